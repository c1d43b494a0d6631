"""pandera schemas for input tables, built from the column roles.

Each modality declares the checks of its roles' columns (:attr:`Modality.checks`);
the rules that are no modality's (row count, unique ids, coordinate pairs) live here.
`clusterflow.validation` runs the schema lazily and turns pandera's failure cases
into the user's report.
"""
from __future__ import annotations

import pandera.pandas as pa

from .modalities import MODALITIES
from .modalities.base import ColumnCheck

MIN_ROWS = 10
TABLE_HINTS = {  # the rule (a check's `error` text, as pandera reports it) -> what to do about it
    f"the table has fewer than {MIN_ROWS} rows": f"clustering needs at least {MIN_ROWS} rows",
    "latitude and longitude columns do not pair up": "give as many latitude as longitude columns (paired in "
    "table order), or set the odd one's role to numeric in a roles file",
}
ID_CHECK = ColumnCheck(lambda s: ~s.duplicated(keep=False), "unique_id", "id values repeat",
                       "an id column must identify each row once; set its role to categorical or ignore",
                       row_wise=False)


def column_checks() -> dict[str, tuple[ColumnCheck, ...]]:
    """Role -> the checks of each column of that role: every registered modality's, and the id's."""
    checks = {role: found for m in MODALITIES.values() for role, found in m.checks.items()}
    return {**checks, "id": (ID_CHECK,)}


def hints() -> dict[str, str]:
    """The rule (a check's error text) -> what the user can do about it."""
    return {**TABLE_HINTS, **{c.error: c.hint for checks in column_checks().values() for c in checks}}


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
    by_role = {role: [pa.Check(c.test, name=c.name, error=c.error) for c in found]
               for role, found in column_checks().items()}
    columns = {
        name: pa.Column(checks=by_role.get(role, []), nullable=True, required=True, coerce=False)
        for name, role in roles.items() if role != "ignore"
    }
    return pa.DataFrameSchema(columns, checks=checks, strict=False, name="input table")
