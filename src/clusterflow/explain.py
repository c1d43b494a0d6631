"""The column table: every input column, its role, why, and the featurization it got.

``clusterflow inspect`` prints it before any training (planned featurization); a
run prints it and records it in the manifest with what the fitted featurizers did
(widths, levels kept, unparseable dates). ``roles_yaml`` turns it into a roles file
the user can edit.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import fsspec
import pandas as pd
import yaml

from .errors import InputValidationError, Problem
from .modalities import MODALITIES
from .roles import RoleDecision, id_column, infer_roles, known_roles, load_roles_file
from .storage import read_table

NAME_SEPARATORS = ("=", ":", "_")  # how featurizers name a column's features: col=level, col:hour_sin, col_svd0


@dataclass(frozen=True)
class ColumnReport:
    """One input column: its role and why, and what featurization it gets.

    ``width`` is the number of features the column became (None before fitting, or
    when its block's features are not named after their columns); ``details`` holds
    what the fitted featurizer reports of the column (levels, unparseable values...).
    """

    column: str
    dtype: str
    role: str
    reason: str
    featurization: str
    width: int | None = None
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def column_reports(frame: pd.DataFrame, decisions: list[RoleDecision], featurizer=None) -> list[ColumnReport]:
    """The column table for ``frame``; with a fitted ``featurizer`` (a run's ColumnTransformer), what it did."""
    fitted = _fitted_columns(featurizer) if featurizer is not None else {}
    row_id = id_column(decisions)
    reports = []
    for d in decisions:
        width, details = fitted.get(d.column, (None, {}))
        reports.append(ColumnReport(d.column, str(frame[d.column].dtype), d.role, d.reason,
                                    details.get("summary") or _planned(d, row_id), width, details))
    return reports


def _planned(decision: RoleDecision, row_id: str | None) -> str:
    if decision.role == "id":
        return "not a feature; carried into the outputs as the row id" if decision.column == row_id \
            else "not a feature (another id column is carried)"
    if decision.role == "ignore":
        return "dropped"
    modality = next((m for m in MODALITIES.values() if decision.role in m.roles), None)
    if modality is None:
        return f"not featurized: no featurizer for role {decision.role!r} is installed"
    return modality.description


def _fitted_columns(featurizer) -> dict[str, tuple[int | None, dict]]:
    """Per column of a fitted ColumnTransformer: (its feature count, the modality's details of it)."""
    fitted = {}
    for name, block, columns in featurizer.transformers_:
        if name not in MODALITIES:
            continue
        names = [str(n) for n in block.get_feature_names_out()]
        described = MODALITIES[name].describe_fitted(block[0]) if MODALITIES[name].describe_fitted else {}
        widths = _widths_by_column(names, list(columns))
        for column in columns:
            details = described.get(column, {}) if all(isinstance(v, dict) for v in described.values()) else {}
            fitted[column] = (widths.get(column), details)
    return fitted


def _widths_by_column(names: list[str], columns: list[str]) -> dict[str, int]:
    """How many of a block's feature names belong to each column (the longest column name that prefixes it)."""
    by_length = sorted(columns, key=len, reverse=True)
    widths: dict[str, int] = {}
    for feature in names:
        owner = next((c for c in by_length
                      if feature == c or feature == f"missingindicator_{c}"
                      or any(feature.startswith(c + sep) for sep in NAME_SEPARATORS)), None)
        if owner is not None:
            widths[owner] = widths.get(owner, 0) + 1
    return widths


COLUMNS = ("column", "dtype", "role", "why", "featurization", "width")


def table_rows(reports: list[ColumnReport] | list[dict]) -> list[dict]:
    """The table's rows (from reports or from their manifest records), with the display headers."""
    rows = []
    for r in reports:
        r = r.as_dict() if isinstance(r, ColumnReport) else r
        width = r["width"] if r["width"] is not None else ("-" if r["role"] in ("id", "ignore") else "")
        rows.append(dict(zip(COLUMNS, (r["column"], r["dtype"], r["role"], r["reason"], r["featurization"], width))))
    return rows


def format_column_table(reports: list[ColumnReport] | list[dict]) -> str:
    """The table as left-aligned plain text for the terminal."""
    rows = [[str(row[c]) for c in COLUMNS] for row in table_rows(reports)]
    widths = [max(len(cell) for cell in column) for column in zip(COLUMNS, *rows)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [COLUMNS, *rows])


def markdown_column_table(reports: list[ColumnReport] | list[dict]) -> str:
    """The table in markdown (the Prefect run summary)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]).replace("|", "\\|") for c in COLUMNS) + " |" for row in table_rows(reports)]
    return "\n".join(lines)


def roles_yaml(reports: list[ColumnReport]) -> str:
    """A roles file (YAML, ``column: role``) with each decision's reason as a comment, for the user to edit."""
    lines = ["# clusterflow roles file: edit a role and run `clusterflow run DATA --roles FILE`.",
             f"# roles: {', '.join(known_roles())}"]
    for r in reports:
        entry = yaml.safe_dump({r.column: r.role}, default_flow_style=False, allow_unicode=True).strip()
        lines.append(f"{entry}  # {r.reason}")
    return "\n".join(lines) + "\n"


def inspect_table(data_uri: str, roles_uri: str | None = None,
                  storage_options: dict | None = None) -> tuple[pd.DataFrame, list[ColumnReport]]:
    """Read a table and decide its roles (a roles file first), without featurizing or training."""
    frame = read_table(data_uri, storage_options)
    decisions = infer_roles(frame, load_roles_file(roles_uri) if roles_uri else None)
    return frame, column_reports(frame, decisions)


def write_roles_file(uri: str, reports: list[ColumnReport], storage_options: dict | None = None) -> None:
    """Write :func:`roles_yaml` to ``uri``; an existing file is never overwritten (it may hold the user's edits)."""
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    if fs.exists(path):
        raise InputValidationError([Problem(rule=f"the roles file {uri} exists; it is never overwritten",
                                            hint="choose another --write-roles file, or edit that one")])
    fs.pipe_file(path, roles_yaml(reports).encode())
