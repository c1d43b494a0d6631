"""Recognising and parsing dates and times: string formats, epoch numbers, UTC.

Shared by role inference (is this column a date/time?) and the datetime featurizer
(parse it the same way at fit and at predict). Every parse returns UTC timestamps:
offsets in the values are honoured, naive values are taken as UTC, and values
that are missing or do not parse become ``NaT``.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

# Tried in this order; on a tie the earlier wins, so day-first beats month-first
# when every day in the column is <= 12.
STRING_FORMATS = (
    "ISO8601",
    "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y",
    "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p", "%m/%d/%Y",
    "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y",
    "%d-%m-%Y %H:%M", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y",
    "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d",
    "%d %b %Y %H:%M", "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%b %d %Y %H:%M", "%b %d %Y", "%B %d %Y",
    "%b %Y", "%B %Y",
    "%a %b %d %H:%M:%S %z %Y",  # Twitter's created_at
    "%a, %d %b %Y %H:%M:%S %z",  # RFC 2822: e-mail, RSS
)
# Plausible epoch numbers: 1990-01-01 to 2100-01-01, in seconds or milliseconds.
EPOCH_RANGES = {"epoch-s": (631_152_000, 4_102_444_800), "epoch-ms": (631_152_000_000, 4_102_444_800_000)}
TIME_NAME = re.compile(r"(^|[_\W])(time|timestamp|ts|epoch|datetime|date)$|^(timestamp|epoch)|_at$", re.IGNORECASE)
DETECTION_SAMPLE = 500
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def is_time_name(name: str) -> bool:
    """Whether a column name reads like a time (``created_at``, ``timestamp``, ``*_time``, ``*_ts``)."""
    return bool(TIME_NAME.search(str(name)))


def epoch_unit(numbers: pd.Series) -> tuple[str | None, float]:
    """The epoch unit ("epoch-s" or "epoch-ms") most of ``numbers`` fall in, and that fraction."""
    numbers = pd.Series(numbers, dtype=float).dropna()
    if numbers.empty:
        return None, 0.0
    fractions = {unit: float(numbers.between(low, high).mean()) for unit, (low, high) in EPOCH_RANGES.items()}
    unit = max(fractions, key=fractions.get)
    return (unit, fractions[unit]) if fractions[unit] > 0 else (None, 0.0)


def best_string_format(strings: pd.Series) -> tuple[str | None, float]:
    """The format that parses most of ``strings`` (no missing values), and the fraction it parses.

    Formats are ranked on a sample of distinct values; the fraction is then measured
    on every value, so it is the rate the featurizer will see.
    """
    counts = pd.Series(strings).value_counts()  # parse each distinct value once
    if counts.empty:
        return None, 0.0
    distinct = pd.Series(counts.index.astype(str)).str.strip()
    sample = distinct.sample(min(len(distinct), DETECTION_SAMPLE), random_state=0)
    rates = {fmt: float(_parse_strings(sample, fmt).notna().mean()) for fmt in STRING_FORMATS}
    fmt = max(rates, key=rates.get)  # the first of equals: dicts keep STRING_FORMATS' order
    if rates[fmt] == 0:
        return None, 0.0
    parsed = _parse_strings(distinct, fmt).notna().to_numpy()
    return fmt, float(counts.to_numpy()[parsed].sum() / counts.sum())


def parse_format(values: pd.Series) -> tuple[str | None, float]:
    """How to parse a column, and the fraction of its present values that parse that way.

    The format is ``"datetime64"`` for datetime dtypes, an epoch unit for numbers,
    else one of :data:`STRING_FORMATS`. ``values`` holds present values only.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime64", 1.0
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return epoch_unit(values)
    return best_string_format(values)


def to_utc(values: pd.Series, fmt: str) -> pd.Series:
    """``values`` as UTC timestamps parsed with ``fmt`` (see :func:`parse_format`); NaT where they do not parse.

    The values' dtype decides first: datetime dtypes are converted whatever ``fmt``
    says, and numbers are read as epoch seconds unless ``fmt`` is ``"epoch-ms"``, so a
    model fitted on Parquet timestamps can score the same column read from a CSV.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return _from_epoch(values, fmt)
    strings = values.astype("string").str.strip()
    if fmt in EPOCH_RANGES:
        return _from_epoch(pd.to_numeric(strings, errors="coerce"), fmt)
    return _parse_strings(strings, "ISO8601" if fmt == "datetime64" else fmt)


def seconds_since_epoch(stamps: pd.Series) -> np.ndarray:
    """UTC timestamps as float seconds since 1970 (NaN for NaT), whatever their resolution."""
    return ((stamps - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=float, na_value=np.nan)


def _from_epoch(numbers: pd.Series, fmt: str) -> pd.Series:
    fmt = fmt if fmt in EPOCH_RANGES else "epoch-s"
    low, high = EPOCH_RANGES[fmt]
    numbers = pd.Series(numbers, dtype=float)
    return pd.to_datetime(numbers.where(numbers.between(low, high)), unit=fmt.removeprefix("epoch-"), utc=True)


def _parse_strings(strings: pd.Series, fmt: str) -> pd.Series:
    return pd.to_datetime(strings, format=fmt, utc=True, errors="coerce")
