"""pandera schemas for input tables, built from the column roles.

The rules per role live here; `clusterflow.validation` runs them lazily and turns
pandera's failure cases into the user's report.
"""
from __future__ import annotations

import pandera.pandas as pa

from .modalities.datetime import parses_consistently
from .modalities.geo import malformed_points, parse_points
from .roles import as_numbers, non_numeric_rows

MIN_ROWS = 10

# The rule (a check's `error` text, as pandera reports it) -> what to do about it.
HINTS = {
    "values are not numbers": "fix or blank these values, or set the column's role to categorical in a roles file",
    "id values repeat": "an id column must identify each row once; set its role to categorical or ignore",
    "values do not parse as dates/times": "at least 95% of the values must parse one way (ISO 8601, 26/11/2026 "
    "14:05, epoch seconds, ...): fix these, or set the column's role to categorical or text in a roles file",
    f"the table has fewer than {MIN_ROWS} rows": f"clustering needs at least {MIN_ROWS} rows",
    "latitudes outside [-90, 90] or not numbers": "fix these values (degrees, latitude first in the pair), "
    "or blank them",
    "longitudes outside [-180, 180] or not numbers": "fix these values (degrees), or blank them",
    "values are not WKT points `POINT (lon lat)`": "write each value as POINT (longitude latitude), or blank it",
    "points outside latitude [-90, 90] or longitude [-180, 180]": "WKT points are POINT (longitude latitude): "
    "check the order and the values",
    "latitude and longitude columns do not pair up": "give as many latitude as longitude columns (paired in "
    "table order), or set the odd one's role to numeric in a roles file",
}

ROLE_CHECKS = {
    "numeric": [pa.Check(lambda s: ~non_numeric_rows(s), name="numeric_values", error="values are not numbers")],
    "id": [pa.Check(lambda s: ~s.duplicated(keep=False), name="unique_id", error="id values repeat")],
    "datetime": [pa.Check(parses_consistently, name="datetime_values", error="values do not parse as dates/times")],
    "latitude": [pa.Check(lambda s: _coordinates_ok(s, 90.0), name="latitude_range",
                          error="latitudes outside [-90, 90] or not numbers")],
    "longitude": [pa.Check(lambda s: _coordinates_ok(s, 180.0), name="longitude_range",
                           error="longitudes outside [-180, 180] or not numbers")],
    "geo": [pa.Check(lambda s: ~malformed_points(s), name="wkt_point",
                     error="values are not WKT points `POINT (lon lat)`"),
            pa.Check(lambda s: _points_in_range(s), name="point_range",
                     error="points outside latitude [-90, 90] or longitude [-180, 180]")],
}


def input_schema(roles: dict[str, str], min_rows: int | None = MIN_ROWS) -> pa.DataFrameSchema:
    """A schema checking each column by its role; ``min_rows=None`` for prediction inputs."""
    checks = []
    if min_rows:
        checks.append(pa.Check(lambda df: len(df) >= min_rows, name="min_rows",
                               error=f"the table has fewer than {min_rows} rows"))
    coordinates = [sum(role == r for role in roles.values()) for r in ("latitude", "longitude")]
    if coordinates[0] != coordinates[1]:
        checks.append(pa.Check(lambda df: False, name="coordinate_pairs",
                               error="latitude and longitude columns do not pair up"))
    columns = {
        name: pa.Column(checks=ROLE_CHECKS.get(role, []), nullable=True, required=True, coerce=False)
        for name, role in roles.items() if role != "ignore"
    }
    return pa.DataFrameSchema(columns, checks=checks, strict=False, name="input table")


def _coordinates_ok(values, limit: float):
    numbers = as_numbers(values)
    return ~non_numeric_rows(values) & ~(numbers.abs() > limit)


def _points_in_range(values):
    points = parse_points(values)
    return ~((points["latitude"].abs() > 90) | (points["longitude"].abs() > 180))
