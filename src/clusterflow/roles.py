"""Column roles: inference from the data, and overrides from a roles file.

Inference runs an ordered list of rules over each column; the first rule that
decides gives the role and the reason, so the decision can be shown to the user
(``clusterflow inspect``) and recorded in the manifest.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Callable

import fsspec
import numpy as np
import pandas as pd
import yaml

from .errors import InputValidationError, Problem

NOT_FEATURES = ("id", "ignore")  # roles of no modality: carried into the outputs, or dropped

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-", "--", "missing"})
MAX_MISSING_FRACTION = 0.95
NUMERIC_PARSE_FRACTION = 0.95
ID_UNIQUE_FRACTION = 0.95
MEDIA_FRACTION = 0.95  # of present values: image paths, WKT points, coordinates in range
BOOLEAN_VALUES = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0, "t": 1.0, "f": 0.0, "y": 1.0, "n": 0.0}
ID_NAME = re.compile(r"(^|[_\W])(id|key|uuid|guid)$|(?-i:[a-z]Id$)", re.IGNORECASE)
# A string column this distinct is never one-hot encoded: text if it reads as prose,
# else an identifier (id when unique, ignored when its values repeat).
PROSE_DISTINCT_FRACTION = 0.5
PROSE_MIN_WORDS = 3
KEY_DISTINCT_FRACTION = 0.9


@dataclass(frozen=True)
class RoleDecision:
    """The role of one column and why it was chosen."""

    column: str
    role: str
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def as_numbers(values: pd.Series) -> pd.Series:
    """Values as floats: numbers stay, boolean words (yes/no, true/false, t/f, y/n, any case) are 1/0,
    missing tokens become NaN, other strings NaN too."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    codes, distinct = pd.factorize(values)  # parse each distinct value once
    text = pd.Series(distinct, dtype=object).astype("string").str.strip()
    lowered = text.str.lower()
    booleans = lowered.map(BOOLEAN_VALUES).astype(float)
    numbers = pd.to_numeric(text.where(~lowered.isin(MISSING_TOKENS) & booleans.isna()), errors="coerce")
    numbers = np.append(numbers.astype(float).fillna(booleans).to_numpy(), np.nan)  # code -1 (missing) -> NaN
    return pd.Series(numbers[codes], index=values.index)


def is_missing(values: pd.Series) -> pd.Series:
    """Missing values: NaN/None and, for strings, the usual missing tokens."""
    missing = values.isna()
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        missing |= values.astype("string").str.strip().str.lower().isin(MISSING_TOKENS).fillna(True)
    return missing.astype(bool)


def non_numeric_rows(values: pd.Series) -> pd.Series:
    """Boolean mask of present values that do not parse as numbers."""
    return ~is_missing(values) & as_numbers(values).isna()


Rule = Callable[[str, pd.Series, pd.Series], "RoleDecision | None"]


def _mostly_missing(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    fraction = 1 - len(present) / max(len(values), 1)
    if fraction > MAX_MISSING_FRACTION:
        return RoleDecision(name, "ignore", f"dropped: {fraction:.0%} of values missing")
    return None


def _nested(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    # Lists and structs (Parquet, JSON) arrive as JSON text (see storage.read_table).
    if pd.api.types.is_numeric_dtype(values) or present.empty:
        return None
    sample = present.head(1_000).astype(str).str.strip()
    if sample.str.match(r"^[\[{]").mean() < MEDIA_FRACTION:
        return None
    parsed = sample.map(_parses_as_json_container).mean()
    if parsed >= MEDIA_FRACTION:
        return RoleDecision(name, "ignore", "dropped: nested values (lists or records); flatten them into "
                                            "columns of their own to cluster on them")
    return None


def _parses_as_json_container(text: str) -> bool:
    try:
        return isinstance(json.loads(text), (list, dict))
    except ValueError:
        return False


def _constant(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    if present.astype(str).nunique() <= 1:
        return RoleDecision(name, "ignore", "dropped: constant (one distinct value)")
    return None


def _boolean(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_bool_dtype(present.infer_objects()):
        return RoleDecision(name, "numeric", "boolean dtype: one 0/1 feature")
    distinct = pd.unique(present)
    spellings = {str(v).strip().lower() for v in distinct[:len(BOOLEAN_VALUES) + 1]}
    if len(distinct) <= len(BOOLEAN_VALUES) and spellings <= set(BOOLEAN_VALUES) | {"0", "1", "0.0", "1.0"}:
        return RoleDecision(name, "numeric", f"boolean values ({'/'.join(sorted(spellings))}): one 0/1 feature")
    return None


def _numeric_key(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    if (pd.api.types.is_integer_dtype(values) and ID_NAME.search(name) and len(present) == len(values)
            and values.is_unique):
        return RoleDecision(name, "id", "unique integers in a column named like a key: a row identifier")
    return None


def _numeric(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    if pd.api.types.is_numeric_dtype(values):
        numbers = present.astype(float)
        whole = bool(np.all(np.mod(numbers, 1) == 0))
        if whole and numbers.is_unique and len(numbers) == len(values) and _is_sequential(numbers):
            return RoleDecision(name, "id", "unique sequential integers: a row identifier, never a feature")
        return RoleDecision(name, "numeric", "numeric dtype")
    parsed = as_numbers(present)
    if parsed.notna().mean() >= NUMERIC_PARSE_FRACTION:
        return RoleDecision(name, "numeric", f"{parsed.notna().mean():.0%} of values parse as numbers")
    return None


def _is_sequential(numbers: pd.Series) -> bool:
    ordered = np.sort(numbers.to_numpy())
    return len(ordered) > 1 and bool(np.all(np.diff(ordered) == 1))


def _unique_key(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    text = present.astype(str)
    if len(values) >= 20 and len(present) == len(values) and text.is_unique and text.str.count(" ").mean() < 1:
        return RoleDecision(name, "id", "dropped: unique string key (id-like), carried into outputs")
    return None


def _high_cardinality(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    text = present.astype(str)
    distinct = text.nunique() / max(len(text), 1)
    if distinct < PROSE_DISTINCT_FRACTION:
        return None
    words = float(text.str.split().str.len().median())
    if words >= PROSE_MIN_WORDS:
        return RoleDecision(name, "text", f"prose: {distinct:.0%} distinct values, {words:g} words per value (median)")
    if distinct >= KEY_DISTINCT_FRACTION:
        return RoleDecision(name, "ignore", f"dropped: key-like labels, {distinct:.1%} distinct but not unique "
                                            "(an identifier, not a feature; too repeated to be the id)")
    return None


def _categorical(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    return RoleDecision(name, "categorical", f"labels with {present.astype(str).nunique()} distinct values")


def inference_rules() -> list[Rule]:
    """The rules in the order they are tried; the first that decides wins.

    Missing, constant and boolean columns first; then each modality's early rules (a
    number may be a time or a coordinate); numbers; each modality's rules (image
    paths, WKT points); and last ids, prose and labels. Modalities come in the
    registry's order (:data:`clusterflow.modalities.MODALITIES`).
    """
    from .modalities import MODALITIES

    modalities = list(MODALITIES.values())
    return [_mostly_missing, _nested, _constant, _boolean, *(r for m in modalities for r in m.early_rules),
            _numeric_key, _numeric, *(r for m in modalities for r in m.rules),
            _unique_key, _high_cardinality, _categorical]


def known_roles() -> tuple[str, ...]:
    """Every role a column may have: each registered modality's, then id and ignore."""
    from .modalities import MODALITIES

    return (*(role for m in MODALITIES.values() for role in m.roles), *NOT_FEATURES)


def infer_role(name: str, values: pd.Series) -> RoleDecision:
    """The role of one column, by the first inference rule that decides."""
    present = values[~is_missing(values)]
    for rule in inference_rules():
        decision = rule(name, values, present)
        if decision is not None:
            return decision
    raise AssertionError("the last inference rule always decides")


def infer_roles(frame: pd.DataFrame, overrides: dict[str, str] | None = None) -> list[RoleDecision]:
    """Role decisions for every column of ``frame``; ``overrides`` (a roles file) win."""
    overrides = overrides or {}
    check_roles_file(overrides, frame.columns)
    decisions = [
        RoleDecision(str(col), overrides[col], "set in the roles file") if col in overrides
        else infer_role(str(col), frame[col])
        for col in frame.columns
    ]
    inferred = {str(c) for c in frame.columns if c not in overrides}
    from .modalities import MODALITIES

    for modality in MODALITIES.values():
        if modality.settle_roles is not None:
            decisions = modality.settle_roles(decisions, inferred)
    return decisions


def check_roles_file(overrides: dict[str, str], columns) -> None:
    problems = [
        Problem(rule="the roles file names a column the table does not have", column=name,
                hint=f"columns are: {', '.join(map(str, columns))}")
        for name in overrides if name not in set(columns)
    ]
    problems += [
        Problem(rule=f"unknown role {role!r}", column=name, hint=f"roles are: {', '.join(known_roles())}")
        for name, role in overrides.items() if role not in known_roles()
    ]
    if problems:
        raise InputValidationError(problems)


def load_roles_file(uri: str) -> dict[str, str]:
    """Read a roles file (YAML or JSON mapping ``column: role``)."""
    try:
        with fsspec.open(uri, "rt") as f:
            text = f.read()
    except FileNotFoundError:
        raise InputValidationError([Problem(rule=f"roles file not found: {uri}")]) from None
    try:
        data = json.loads(text) if uri.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InputValidationError([Problem(rule=f"cannot parse the roles file {uri}: {exc}")]) from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputValidationError(
            [Problem(rule="the roles file must be a mapping of column: role", hint="e.g. `age: numeric`")]
        )
    return {str(k): v for k, v in data.items()}


def id_column(decisions: list[RoleDecision]) -> str | None:
    """The first id column, carried into every output; None means use ``row_id``."""
    return next((d.column for d in decisions if d.role == "id"), None)


def feature_columns(decisions: list[RoleDecision]) -> dict[str, list[str]]:
    """Columns grouped by feature role, in table order."""
    grouped: dict[str, list[str]] = {}
    for d in decisions:
        if d.role not in NOT_FEATURES:
            grouped.setdefault(d.role, []).append(d.column)
    return grouped
