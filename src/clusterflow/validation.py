"""Validate an input table against its roles and report every problem at once."""
from __future__ import annotations

import pandas as pd
import pandera.errors

from .input_schema import MIN_ROWS, hints, input_schema

from .errors import InputValidationError, Problem
from .modalities.image import prepare_image_columns
from .roles import RoleDecision, feature_columns


def validate_table(frame: pd.DataFrame, decisions: list[RoleDecision], *, min_rows: int | None = MIN_ROWS) -> None:
    """Raise :class:`InputValidationError` listing every broken rule (column, rows, rule, hint)."""
    problems = []
    if frame.shape[1] == 0 or (min_rows and len(frame) == 0):
        raise InputValidationError([Problem(rule="the table has no rows" if frame.shape[1] else "the table has no columns",
                                            hint="give a table with a header and data rows")])
    if not feature_columns(decisions):
        dropped = "; ".join(f"{d.column}: {d.reason}" for d in decisions)
        problems.append(Problem(rule="no usable column: every column is an id, constant, empty or ignored",
                                hint=f"decisions were {dropped}"))
    roles = {d.column: d.role for d in decisions}
    try:
        input_schema(roles, min_rows=min_rows).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        problems += problems_from_failure_cases(exc.failure_cases)
    if problems:
        raise InputValidationError(problems)


def validate_input(frame: pd.DataFrame, decisions: list[RoleDecision], *, image_root: str,
                   on_bad_image: str = "error", min_rows: int | None = MIN_ROWS) -> pd.DataFrame:
    """Validate the table (:func:`validate_table`) and the image files it points to, in one report.

    Image values resolve against ``image_root`` (paths outside it are rejected); see
    :func:`clusterflow.modalities.image.prepare_image_columns` for ``on_bad_image``.
    Returns ``frame`` with its image columns as URIs.
    """
    images = [d.column for d in decisions if d.role == "image" and d.column in frame.columns]
    frame, problems = prepare_image_columns(frame, images, image_root, on_bad_image)
    try:
        validate_table(frame, decisions, min_rows=min_rows)
    except InputValidationError as exc:
        problems = exc.problems + problems
    if problems:
        raise InputValidationError(problems)
    return frame


def problems_from_failure_cases(cases: pd.DataFrame) -> list[Problem]:
    """One :class:`Problem` per (column, check) from pandera's failure-case frame."""
    problems = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        rows = tuple(int(i) for i in group["index"].dropna().unique())
        rule = str(check)
        if rule == "column_in_dataframe":
            rule, column = "column is missing", group["failure_case"].iloc[0]
        problems.append(Problem(rule=rule, column=None if pd.isna(column) else str(column), rows=rows,
                                n_rows=len(rows), hint=hints().get(rule, "")))
    return problems
