"""pandera schemas for input tables, built from the column roles.

The rules per role live here; `clusterflow.validation` runs them lazily and turns
pandera's failure cases into the user's report.
"""
from __future__ import annotations

import pandera.pandas as pa

from clusterflow.modalities.datetime import parses_consistently
from clusterflow.roles import non_numeric_rows

MIN_ROWS = 10

# The rule (a check's `error` text, as pandera reports it) -> what to do about it.
HINTS = {
    "values are not numbers": "fix or blank these values, or set the column's role to categorical in a roles file",
    "id values repeat": "an id column must identify each row once; set its role to categorical or ignore",
    "values do not parse as dates/times": "at least 95% of the values must parse one way (ISO 8601, 26/11/2026 "
    "14:05, epoch seconds, ...): fix these, or set the column's role to categorical or text in a roles file",
    f"the table has fewer than {MIN_ROWS} rows": f"clustering needs at least {MIN_ROWS} rows",
}

ROLE_CHECKS = {
    "numeric": [pa.Check(lambda s: ~non_numeric_rows(s), name="numeric_values", error="values are not numbers")],
    "id": [pa.Check(lambda s: ~s.duplicated(keep=False), name="unique_id", error="id values repeat")],
    "datetime": [pa.Check(parses_consistently, name="datetime_values", error="values do not parse as dates/times")],
}


def input_schema(roles: dict[str, str], min_rows: int | None = MIN_ROWS) -> pa.DataFrameSchema:
    """A schema checking each column by its role; ``min_rows=None`` for prediction inputs."""
    checks = []
    if min_rows:
        checks.append(pa.Check(lambda df: len(df) >= min_rows, name="min_rows",
                               error=f"the table has fewer than {min_rows} rows"))
    columns = {
        name: pa.Column(checks=ROLE_CHECKS.get(role, []), nullable=True, required=True, coerce=False)
        for name, role in roles.items() if role != "ignore"
    }
    return pa.DataFrameSchema(columns, checks=checks, strict=False, name="input table")
