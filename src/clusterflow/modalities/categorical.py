"""Categorical columns: one-hot of the frequent levels plus "other", missing as a level.

Width is bounded whatever the cardinality: at most :data:`MAX_LEVELS` features per
column. Columns with more than :data:`FREQUENCY_ENCODING_ABOVE` levels also get a
frequency feature, so the many levels that share "other" still differ by how common they are.
"""
from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ..roles import MISSING_TOKENS, is_missing
from .base import FeaturizeOptions, Modality, require_columns

MAX_LEVELS = 30  # per column, "other" and the frequency feature included: the block's width stays bounded
MIN_LEVEL_FREQUENCY = 0.005
FREQUENCY_ENCODING_ABOVE = 100  # distinct levels
MISSING_LEVEL = "(missing)"
OTHER_LEVEL = "(other)"


def level_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Every row's level, as codes into the returned labels: strings, missing values as their own level.

    Each distinct value is labelled once, so the cost follows the number of levels, not rows.
    """
    codes, distinct = pd.factorize(values)
    distinct = pd.Series(distinct, dtype=object)
    names = distinct.astype("string").where(~is_missing(distinct), MISSING_LEVEL).fillna(MISSING_LEVEL)
    label_codes, labels = pd.factorize(np.append(names.to_numpy(dtype=object), MISSING_LEVEL))  # code -1: NaN
    return label_codes[codes], np.asarray(labels, dtype=object)


class CategoricalEncoder(TransformerMixin, BaseEstimator):
    """Encode label columns with a bounded width: frequent levels one-hot, the rest "other".

    Per column, the levels that hold at least ``min_frequency`` of the training rows
    get one-hot features, most frequent first, up to the width budget; every other
    level shares one "other" feature, and so do levels unseen in training (all zeros
    when every training level has its own feature). A column
    with more than ``frequency_above`` distinct training levels also gets a frequency
    feature: log(1 + the level's training count), standardized, 0 counts for unseen
    levels. Missing values are a level of their own. A column never takes more than
    ``max_categories`` features, whatever its cardinality.

    Parameters
    ----------
    max_categories : int, default=30
        The most features per column: one-hot levels, "other" and frequency together.
    min_frequency : float, default=0.005
        Levels rarer than this share of the training rows go to "other".
    frequency_above : int, default=100
        Columns with more distinct training levels than this also get the frequency feature.

    Attributes
    ----------
    categories_ : list of ndarray
        Per column, the levels with a one-hot feature, most frequent first.
    other_ : list of bool
        Per column, whether it has the "other" feature.
    counts_ : dict of str -> pandas.Series
        Training count of every level, for the frequency-encoded columns.
    frequency_center_, frequency_scale_ : dict of str -> float
        Standardization of the frequency feature.
    column_details_ : dict of str -> dict
        Per column, for the run's explanation: distinct levels, one-hot levels,
        "other", frequency feature, width and a one-line summary.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"city": ["Oslo"] * 6 + ["Rome"] * 3 + ["Lima"]})
    >>> encoder = CategoricalEncoder(max_categories=3, min_frequency=0.2).fit(frame)
    >>> encoder.get_feature_names_out().tolist()
    ['city=Oslo', 'city=Rome', 'city=(other)']
    >>> encoder.transform(pd.DataFrame({"city": ["Rome", "Paris"]})).tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """

    _parameter_constraints = {
        "max_categories": [Interval(Integral, 3, None, closed="left")],
        "min_frequency": [Interval(Real, 0, 1, closed="both")],
        "frequency_above": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, max_categories: int = MAX_LEVELS, min_frequency: float = MIN_LEVEL_FREQUENCY,
                 frequency_above: int = FREQUENCY_ENCODING_ABOVE):
        self.max_categories = max_categories
        self.min_frequency = min_frequency
        self.frequency_above = frequency_above

    def fit(self, X: pd.DataFrame, y=None):
        """Learn each column's one-hot levels (and level counts when it has many) from ``X``."""
        self._validate_params()
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.categories_, self.other_ = [], []
        self.counts_, self.frequency_center_, self.frequency_scale_, self.column_details_ = {}, {}, {}, {}
        for column in self.feature_names_in_:
            codes, labels = level_codes(X[column])
            counts = pd.Series(np.bincount(codes, minlength=len(labels)), index=labels)
            counts = counts[counts > 0]
            counts = counts.iloc[np.lexsort((counts.index.to_numpy(dtype=str), -counts.to_numpy()))]
            frequency = len(counts) > self.frequency_above
            frequent = counts[counts >= self.min_frequency * len(codes)]
            budget = self.max_categories - int(frequency)
            if len(frequent) < len(counts) or len(counts) > budget:
                budget -= 1  # room for "other"
            self.categories_.append(frequent.index[:budget].to_numpy(dtype=object))
            self.other_.append(len(self.categories_[-1]) < len(counts))
            if frequency:
                self.counts_[column] = counts
                logs = np.log1p(counts.to_numpy(dtype=float)).repeat(counts.to_numpy())
                self.frequency_center_[column] = float(logs.mean())
                self.frequency_scale_[column] = float(logs.std()) or 1.0
            self.column_details_[column] = _details(len(counts), len(self.categories_[-1]), self.other_[-1], frequency)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The features of ``X``: per column its one-hot levels, "other" and frequency feature."""
        check_is_fitted(self)
        require_columns(X, self.feature_names_in_)
        widths = [d["width"] for d in self.column_details_.values()]
        features = np.zeros((len(X), sum(widths)))
        start = 0
        for column, levels, other, width in zip(self.feature_names_in_, self.categories_, self.other_, widths):
            codes, labels = level_codes(X[column])
            level = pd.Index(levels).get_indexer(labels)[codes]  # -1: not a one-hot level
            known = level >= 0
            features[np.flatnonzero(known), start + level[known]] = 1.0
            if other:
                features[~known, start + len(levels)] = 1.0
            if column in self.counts_:
                counts = self.counts_[column].reindex(labels).fillna(0).to_numpy(dtype=float)[codes]
                features[:, start + width - 1] = ((np.log1p(counts) - self.frequency_center_[column])
                                                  / self.frequency_scale_[column])
            start += width
        return features

    def transform_values(self, columns: Sequence[Sequence]) -> np.ndarray | None:
        """:meth:`transform` of rows given as one list of values per column, without a frame (a service's few rows).

        The same features for strings and None; returns None when a value is anything else
        (a number's level, ``3`` or ``3.0``, depends on its column's dtype: use :meth:`transform`).
        """
        check_is_fitted(self)
        widths = [d["width"] for d in self.column_details_.values()]
        features = np.zeros((len(columns[0]) if columns else 0, sum(widths)))
        start = 0
        for column, values, levels, other, width in zip(self.feature_names_in_, columns, self.categories_,
                                                        self.other_, widths):
            labels = []
            for value in values:
                if value is not None and not isinstance(value, str):
                    return None
                labels.append(MISSING_LEVEL if value is None or value.strip().lower() in MISSING_TOKENS else value)
            index = {level: i for i, level in enumerate(levels)}
            for row, label in enumerate(labels):
                level = index.get(label)
                if level is not None:
                    features[row, start + level] = 1.0
                elif other:
                    features[row, start + len(levels)] = 1.0
            if column in self.counts_:
                counts = self.counts_[column].reindex(labels).fillna(0).to_numpy(dtype=float)
                features[:, start + width - 1] = ((np.log1p(counts) - self.frequency_center_[column])
                                                  / self.frequency_scale_[column])
            start += width
        return features

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self)
        _check_feature_names_in(self, input_features)
        names = []
        for column, levels, other in zip(self.feature_names_in_, self.categories_, self.other_):
            names += [f"{column}={level}" for level in levels] + ([f"{column}={OTHER_LEVEL}"] if other else [])
            if column in self.counts_:
                names.append(f"{column}:frequency")
        return np.asarray(names, dtype=object)


def _details(n_levels: int, one_hot: int, other: bool, frequency: bool) -> dict:
    summary = f"{n_levels:,} levels: {one_hot} one-hot" + (" + other" if other else "") + (" + frequency" if frequency else "")
    return {"levels": n_levels, "one_hot": one_hot, "other": other, "frequency": frequency,
            "width": one_hot + int(other) + int(frequency), "summary": summary}


def make_categorical_featurizer(columns: list[str], options: FeaturizeOptions) -> CategoricalEncoder:
    return CategoricalEncoder()


def categorical_profile(frame: pd.DataFrame, column: str, labels: np.ndarray, distances: np.ndarray,
                        seed: int) -> dict:
    from ..insights.profiles import categorical_profile

    return categorical_profile(frame[column], labels)


CATEGORICAL = Modality(
    "categorical", ("categorical",), make_categorical_featurizer,
    f"frequent levels one-hot + other (+ frequency past {FREQUENCY_ENCODING_ABOVE} levels), at most {MAX_LEVELS} "
    "features",
    describe_fitted=lambda encoder: encoder.column_details_,
    profile=categorical_profile,
    # One-hot levels form a lattice whose silhouette excess is high whatever the levels mean
    # (bench/quality.py: 0.58 for car names and for dates read as levels, against 0.03-0.33 elsewhere).
    weighed_by_structure=False,
)
