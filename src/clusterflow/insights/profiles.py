"""Cluster Insights: what each cluster looks like, feature by feature, next to all the data.

One profile function per role. Each takes the raw column(s), the cluster label of
every row and (where representatives are picked) each row's distance to its
cluster's centre in the model's feature space, and returns a JSON-safe dict.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer

from ..roles import as_numbers, is_missing
from ..temporal import parse_format, to_utc

ALL = "all"
MAX_LEVELS = 10
MIN_LEVEL_SHARE = 0.01
TOP_TERMS = 10
REPRESENTATIVES = 3
MAX_TEXT_CHARS = 300
MAP_POINTS = 3000
_POINT = re.compile(r"^\s*POINT\s*\(\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)\s*\)\s*$", re.IGNORECASE)


def _groups(labels: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(cluster key, row mask) for all rows first, then each cluster."""
    return [(ALL, np.ones(len(labels), bool))] + [(str(c), labels == c) for c in np.unique(labels)]


def numeric_profile(values: pd.Series, labels: np.ndarray) -> dict:
    """Mean, median, quartiles and missing share of a numeric column, per cluster and overall."""
    numbers = as_numbers(values).to_numpy()
    stats = {}
    for key, mask in _groups(labels):
        x = numbers[mask]
        present = x[~np.isnan(x)]
        q1, median, q3 = np.quantile(present, [0.25, 0.5, 0.75]) if len(present) else (np.nan,) * 3
        stats[key] = {"rows": int(mask.sum()), "mean": _num(present.mean() if len(present) else np.nan),
                      "median": _num(median), "q1": _num(q1), "q3": _num(q3),
                      "min": _num(present.min() if len(present) else np.nan),
                      "max": _num(present.max() if len(present) else np.nan),
                      "missing": _num(1 - len(present) / max(len(x), 1))}
    return {"kind": "numeric", "stats": stats}


def categorical_profile(values: pd.Series, labels: np.ndarray) -> dict:
    """Share of each frequent level (of all the data), an "all other" share and the missing share."""
    missing = is_missing(values).to_numpy()
    text = values.astype("string").to_numpy(dtype=object)
    counts = pd.Series(text[~missing]).value_counts()
    levels = [str(v) for v, n in counts.items() if n / len(values) >= MIN_LEVEL_SHARE][:MAX_LEVELS]
    stats = {}
    for key, mask in _groups(labels):
        n = max(int(mask.sum()), 1)
        present = pd.Series(text[mask & ~missing]).astype(str)
        level_counts = present.value_counts()
        shares = {level: _num(level_counts.get(level, 0) / n) for level in levels}
        stats[key] = {"rows": int(mask.sum()), "levels": shares,
                      "other": _num((len(present) - sum(level_counts.get(lv, 0) for lv in levels)) / n),
                      "missing": _num((mask & missing).sum() / n)}
    return {"kind": "categorical", "levels": levels, "stats": stats}


def text_profile(values: pd.Series, labels: np.ndarray, distances: np.ndarray, max_rows: int = 20_000,
                 random_state: int = 0) -> dict:
    """Distinctive words and bigrams per cluster (class-based TF-IDF) and representative texts.

    c-TF-IDF treats each cluster's texts as one document: a term's frequency in the
    cluster, times ``log(1 + A / f)`` where ``A`` is the average number of words per
    cluster and ``f`` the term's frequency over all clusters.
    """
    missing = is_missing(values).to_numpy()
    text = values.astype("string").fillna("").to_numpy(dtype=object)
    rows = np.flatnonzero(~missing)
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(random_state).choice(rows, max_rows, replace=False))
    clusters = np.unique(labels)
    terms: dict[str, list] = {}
    if len(rows):
        vectorizer = CountVectorizer(ngram_range=(1, 2), stop_words="english", min_df=2, max_features=20_000)
        try:
            counts = vectorizer.fit_transform(text[rows])
        except ValueError:  # only stop words or one-off terms: no vocabulary
            counts = None
        if counts is not None:
            per_cluster = np.vstack([np.asarray(counts[labels[rows] == c].sum(axis=0)).ravel() for c in clusters])
            words = per_cluster.sum(axis=1, keepdims=True)
            tf = per_cluster / np.maximum(words, 1)
            idf = np.log(1 + words.mean() / np.maximum(per_cluster.sum(axis=0), 1))
            scores = tf * idf
            vocabulary = vectorizer.get_feature_names_out()
            for i, c in enumerate(clusters):
                top = [j for j in np.argsort(-scores[i])[:TOP_TERMS] if scores[i, j] > 0]
                terms[str(c)] = [{"term": str(vocabulary[j]), "score": _num(scores[i, j])} for j in top]
    stats = {}
    for key, mask in _groups(labels):
        entry = {"rows": int(mask.sum()), "missing": _num((mask & missing).sum() / max(mask.sum(), 1))}
        if key != ALL:
            picks = _nearest(distances, mask & ~missing, REPRESENTATIVES)
            entry["terms"] = terms.get(key, [])
            entry["examples"] = [{"row": int(r), "text": str(text[r])[:MAX_TEXT_CHARS]} for r in picks]
        stats[key] = entry
    return {"kind": "text", "stats": stats}


def image_profile(values: pd.Series, labels: np.ndarray, distances: np.ndarray, n_images: int = 4) -> dict:
    """The images nearest each cluster's centre (their rows and paths) and the missing share."""
    missing = is_missing(values).to_numpy()
    stats = {}
    for key, mask in _groups(labels):
        entry = {"rows": int(mask.sum()), "missing": _num((mask & missing).sum() / max(mask.sum(), 1))}
        if key != ALL:
            entry["examples"] = [{"row": int(r), "path": str(values.iloc[r])}
                                 for r in _nearest(distances, mask & ~missing, n_images)]
        stats[key] = entry
    return {"kind": "image", "stats": stats}


def coordinates(frame: pd.DataFrame, columns: dict[str, str]) -> np.ndarray:
    """(lat, lon) of each row from a WKT ``POINT (lon lat)`` column or a latitude/longitude pair.

    ``columns`` maps role -> column: ``{"geo": c}`` or ``{"latitude": a, "longitude": b}``.
    Unparseable or missing points are NaN.
    """
    if "geo" in columns:
        parsed = frame[columns["geo"]].astype("string").str.extract(_POINT).astype(float)
        return np.column_stack([parsed[1].to_numpy(), parsed[0].to_numpy()])
    return np.column_stack([as_numbers(frame[columns["latitude"]]).to_numpy(),
                            as_numbers(frame[columns["longitude"]]).to_numpy()])


def geo_profile(latlon: np.ndarray, labels: np.ndarray, distances: np.ndarray, random_state: int = 0) -> dict:
    """Centre, representative locations and missing share per cluster, and a sample of points to map."""
    missing = np.isnan(latlon).any(axis=1)
    stats = {}
    for key, mask in _groups(labels):
        members = latlon[mask & ~missing]
        entry = {"rows": int(mask.sum()), "missing": _num((mask & missing).sum() / max(mask.sum(), 1)),
                 "centre": _spherical_centre(members)}
        if key != ALL:
            entry["examples"] = [{"row": int(r), "lat": _num(latlon[r, 0]), "lon": _num(latlon[r, 1])}
                                 for r in _nearest(distances, mask & ~missing, REPRESENTATIVES)]
        stats[key] = entry
    present = np.flatnonzero(~missing)
    if len(present) > MAP_POINTS:
        present = np.sort(np.random.default_rng(random_state).choice(present, MAP_POINTS, replace=False))
    points = [[_num(latlon[r, 1]), _num(latlon[r, 0]), int(labels[r])] for r in present]
    return {"kind": "geo", "stats": stats, "points": points}


def datetime_profile(values: pd.Series, labels: np.ndarray) -> dict:
    """Median, quartiles, range, most common weekday and missing share of a date/time column."""
    present_values = values[~is_missing(values)]
    fmt, _ = parse_format(present_values)  # as the featurizer reads it: epochs, day-first dates, time zones
    times = to_utc(values.where(~is_missing(values)), fmt or "ISO8601").dt.tz_localize(None)
    nanos = times.to_numpy(dtype="datetime64[ns]")
    stats = {}
    for key, mask in _groups(labels):
        x = pd.Series(nanos[mask])
        present = x.dropna()
        if len(present):
            q = present.quantile([0.0, 0.25, 0.5, 0.75, 1.0])
            weekday = present.dt.day_name().value_counts()
            entry = {"min": _iso(q.iloc[0]), "q1": _iso(q.iloc[1]), "median": _iso(q.iloc[2]), "q3": _iso(q.iloc[3]),
                     "max": _iso(q.iloc[4]), "weekday": str(weekday.index[0]),
                     "weekday_share": _num(weekday.iloc[0] / len(present))}
        else:
            entry = {}
        stats[key] = {"rows": int(mask.sum()), **entry, "missing": _num(1 - len(present) / max(len(x), 1))}
    return {"kind": "datetime", "stats": stats}


def _nearest(distances: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    rows = np.flatnonzero(mask)
    return rows[np.argsort(distances[rows], kind="stable")[:n]]


def _spherical_centre(latlon: np.ndarray) -> dict | None:
    if not len(latlon):
        return None
    lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
    x, y, z = (np.cos(lat) * np.cos(lon)).mean(), (np.cos(lat) * np.sin(lon)).mean(), np.sin(lat).mean()
    return {"lat": _num(np.degrees(np.arctan2(z, np.hypot(x, y)))), "lon": _num(np.degrees(np.arctan2(y, x)))}


def _iso(value) -> str:
    return pd.Timestamp(value).isoformat()


def _num(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value
