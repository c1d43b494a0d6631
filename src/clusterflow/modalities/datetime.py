"""Date/time columns: cyclic hour / weekday / month and a scaled absolute time.

Values are parsed to UTC (see :mod:`clusterflow.temporal`): ISO 8601 and common
day-first / month-first formats, epoch seconds or milliseconds, datetime dtypes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from .. import temporal
from ..errors import InputValidationError, Problem
from ..roles import NUMERIC_PARSE_FRACTION, RoleDecision, as_numbers, is_missing
from .base import ColumnCheck, FeaturizeOptions, Modality, require_columns

# A cyclic part: its name and the fraction of its cycle a timestamp is at.
CYCLES = {
    "hour": lambda t: (t.dt.hour + t.dt.minute / 60 + t.dt.second / 3600) / 24,
    "weekday": lambda t: (t.dt.dayofweek + t.dt.hour / 24) / 7,
    "month": lambda t: (t.dt.month - 1 + (t.dt.day - 1) / t.dt.days_in_month) / 12,
}
# Whether a part varies is judged on its whole units (a date-only column has one hour).
UNITS = {"hour": lambda t: t.dt.hour, "weekday": lambda t: t.dt.dayofweek, "month": lambda t: t.dt.month}
MAX_WIDTH = 2 * len(CYCLES) + 2  # per column: sin/cos per part, scaled time, missing flag
DATETIME_PARSE_FRACTION = 0.95
EPOCH_UNIT_NAMES = {"epoch-s": "seconds", "epoch-ms": "milliseconds"}


def parses_consistently(values: pd.Series) -> pd.Series:
    """Row mask for validation: all True when the column parses as dates/times, else the failing rows are False.

    A column parses when at least :data:`DATETIME_PARSE_FRACTION` of
    its present values parse in one way (a few unparseable values become missing);
    otherwise its unparseable rows are the ones to report.
    """
    missing = is_missing(values)
    fmt, fraction = temporal.parse_format(values[~missing])
    if fmt is not None and fraction >= DATETIME_PARSE_FRACTION:
        return pd.Series(True, index=values.index)
    parsed = temporal.to_utc(values, fmt) if fmt is not None else pd.Series(pd.NaT, index=values.index)
    return missing | parsed.notna()


class DatetimeFeaturizer(TransformerMixin, BaseEstimator):
    """Encode date/time columns as cyclic parts plus a scaled absolute time.

    For each column, fit learns how to parse it (datetime dtype, epoch unit or
    string format; see :func:`clusterflow.temporal.parse_format`) and which of
    ``parts`` vary in the training data. Each varying part becomes a sin/cos pair
    (so 23:00 sits next to 00:00, December next to January); the absolute time
    becomes seconds since 1970, standardized. Missing and unparseable values get 0
    in every feature (the centre of each cycle and the mean time) and a missing
    flag, when the training data had any. At most :data:`MAX_WIDTH` features per column.

    Parameters
    ----------
    parts : tuple of {"hour", "weekday", "month"}, default=("hour", "weekday", "month")
        Cyclic parts to encode, where they vary in the training data.

    Attributes
    ----------
    formats_ : dict of str -> str
        How each column is parsed: ``"datetime64"``, ``"epoch-s"``, ``"epoch-ms"`` or a string format.
    parts_ : dict of str -> list of str
        The cyclic parts kept per column.
    center_, scale_ : dict of str -> float
        Mean and standard deviation of each column's time in seconds since 1970.
    flagged_ : dict of str -> bool
        Whether the column gets a missing flag.
    column_details_ : dict of str -> dict
        Per column, for the run's explanation: format, parts, counts of missing and
        unparseable training values, time range, width and a one-line summary.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"at": ["2026-11-26 14:05", "2026-11-27 09:30", "bad", "2026-12-01 23:59"]})
    >>> featurizer = DatetimeFeaturizer().fit(frame)
    >>> featurizer.column_details_["at"]["unparseable"]
    1
    >>> featurizer.get_feature_names_out().tolist()
    ['at:hour_sin', 'at:hour_cos', 'at:weekday_sin', 'at:weekday_cos', 'at:month_sin', 'at:month_cos', 'at:time', 'at:missing']
    """

    _parameter_constraints = {"parts": [tuple, list]}

    def __init__(self, parts=tuple(CYCLES)):
        self.parts = parts

    def fit(self, X: pd.DataFrame, y=None):
        """Learn each column's format, varying parts and time scale from ``X``."""
        self._validate_params()
        unknown = set(self.parts) - set(CYCLES)
        if unknown:
            raise ValueError(f"unknown datetime parts {sorted(unknown)}; parts are {list(CYCLES)}")
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.formats_, self.parts_, self.center_, self.scale_, self.flagged_ = {}, {}, {}, {}, {}
        self.column_details_ = {}
        for column in self.feature_names_in_:
            values = X[column]
            missing = is_missing(values)
            fmt, _ = temporal.parse_format(values[~missing])
            if fmt is None:
                rows = tuple(values.index[~missing][:10])
                raise InputValidationError([Problem(
                    rule="role datetime, but no value parses as a date/time", column=column, rows=rows,
                    n_rows=int((~missing).sum()),
                    hint="give ISO 8601 or a format like 26/11/2026 14:05, or set another role in the roles file")])
            stamps = temporal.to_utc(values, fmt)
            seconds = temporal.seconds_since_epoch(stamps)
            self.formats_[column] = fmt
            self.parts_[column] = [p for p in self.parts if UNITS[p](stamps).nunique() > 1]
            self.center_[column] = float(np.nanmean(seconds)) if stamps.notna().any() else 0.0
            spread = float(np.nanstd(seconds)) if stamps.notna().any() else 0.0
            self.scale_[column] = spread if spread > 0 else 1.0
            self.flagged_[column] = bool(stamps.isna().any())
            self.column_details_[column] = self._details(column, stamps, int(missing.sum()))
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The features of ``X``: per column its cyclic pairs, scaled time and missing flag."""
        check_is_fitted(self)
        require_columns(X, self.feature_names_in_)
        blocks = []
        for column in self.feature_names_in_:
            stamps = temporal.to_utc(X[column], self.formats_[column])
            present = stamps.notna().to_numpy()
            for part in self.parts_[column]:
                angle = 2 * np.pi * CYCLES[part](stamps).to_numpy(dtype=float, na_value=np.nan)
                blocks += [np.where(present, np.sin(angle), 0.0), np.where(present, np.cos(angle), 0.0)]
            seconds = temporal.seconds_since_epoch(stamps)
            blocks.append(np.where(present, (seconds - self.center_[column]) / self.scale_[column], 0.0))
            if self.flagged_[column]:
                blocks.append((~present).astype(float))
        return np.column_stack(blocks) if blocks else np.empty((len(X), 0))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self)
        _check_feature_names_in(self, input_features)
        names = []
        for column in self.feature_names_in_:
            names += [f"{column}:{part}_{f}" for part in self.parts_[column] for f in ("sin", "cos")]
            names.append(f"{column}:time")
            if self.flagged_[column]:
                names.append(f"{column}:missing")
        return np.asarray(names, dtype=object)

    def _details(self, column: str, stamps: pd.Series, n_missing: int) -> dict:
        parts = self.parts_[column]
        width = 2 * len(parts) + 1 + int(self.flagged_[column])
        n_failed = int(stamps.isna().sum())
        summary = " ".join([
            f"parsed as {self.formats_[column]} (UTC);",
            f"cyclic {', '.join(parts)} +" if parts else "no cyclic part varies;",
            "scaled time",
            f"+ missing flag ({n_missing} missing, {n_failed - n_missing} unparseable in train)" if n_failed else "",
        ]).strip()
        return {
            "format": self.formats_[column], "parts": parts, "rows": len(stamps), "missing": n_missing,
            "unparseable": n_failed - n_missing,
            "range": [f"{stamps.min():%Y-%m-%dT%H:%M:%SZ}", f"{stamps.max():%Y-%m-%dT%H:%M:%SZ}"]
            if n_failed < len(stamps) else None,
            "width": width, "summary": summary,
        }


def infer_datetime(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    if pd.api.types.is_datetime64_any_dtype(values):
        return RoleDecision(name, "datetime", "datetime dtype")
    sample = present.sample(min(len(present), 1_000), random_state=0)
    if pd.api.types.is_numeric_dtype(values) or as_numbers(sample).notna().mean() >= NUMERIC_PARSE_FRACTION:
        if not temporal.is_time_name(name):
            return None
        unit, fraction = temporal.epoch_unit(as_numbers(present))
        if unit is None or fraction < DATETIME_PARSE_FRACTION:
            return None
        stamps = temporal.to_utc(as_numbers(present), unit)
        start, end = (f"{stamp:%Y-%m-%d}" for stamp in (stamps.min(), stamps.max()))
        return RoleDecision(name, "datetime", f"named like a time, numbers are {EPOCH_UNIT_NAMES[unit]} "
                                              f"since 1970 ({start} to {end})" + _unparsed(present, fraction))
    fmt, fraction = temporal.best_string_format(present)
    if fmt is None or fraction < DATETIME_PARSE_FRACTION:
        return None
    return RoleDecision(name, "datetime", f"{fraction:.1%} of values parse as dates/times ({fmt})"
                        + _unparsed(present, fraction))


def _unparsed(present: pd.Series, fraction: float) -> str:
    count = round(len(present) * (1 - fraction))
    return f"; {count} unparseable value(s) will be missing" if count else ""


def make_datetime_featurizer(columns: list[str], options: FeaturizeOptions) -> DatetimeFeaturizer:
    return DatetimeFeaturizer()


DATETIME = Modality(
    "datetime", ("datetime",), make_datetime_featurizer,
    f"cyclic hour, weekday, month (those that vary) + scaled time, in UTC; missing flag; at most {MAX_WIDTH} "
    "features",
    describe_fitted=lambda featurizer: featurizer.column_details_,
    early_rules=(infer_datetime,),  # before the numeric rules: epoch seconds are numbers
    checks={"datetime": (ColumnCheck(
        parses_consistently, "datetime_values", "values do not parse as dates/times",
        "at least 95% of the values must parse one way (ISO 8601, 26/11/2026 14:05, epoch seconds, ...): fix "
        "these, or set the column's role to categorical or text in a roles file", row_wise=False),)},
    profile=lambda frame, column, labels, distances, seed: _profile(frame[column], labels),
)


def _profile(values: pd.Series, labels: np.ndarray) -> dict:
    from ..insights.profiles import datetime_profile

    return datetime_profile(values, labels)
