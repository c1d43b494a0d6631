"""Numeric columns: median impute with a missing flag, then :class:`SpreadScaler`.

Measured on the labelled benchmark (bench/quality.py): plain robust scaling (IQR) gave the
features whose mass sits in a narrow band most of the block; standard scaling of every
feature, missing flags included, let a flag set on a few rows split them off (the demo's top
model fell below 0.9 ARI, a planted new segment merged away in reclustering). Scaling the
values by the larger of the two spreads and leaving 0/1 features as they are avoids both.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted, validate_data

from ..roles import as_numbers, non_numeric_rows
from .base import ColumnCheck, FeaturizeOptions, Modality

NORMAL_IQR = 1.349  # the interquartile range of a standard normal distribution


def to_numbers(frame: pd.DataFrame) -> np.ndarray:
    """Columns as floats; missing tokens and booleans handled as in role inference."""
    return np.column_stack([as_numbers(frame[c]).to_numpy() for c in frame.columns])


def numbers_from_values(columns: Sequence[Sequence]) -> np.ndarray:
    """:func:`to_numbers` of rows given as one list of plain values (JSON scalars) per column, without a frame.

    Numbers and booleans convert as pandas converts a column of them; strings go through
    :func:`clusterflow.roles.as_numbers`, as in :func:`to_numbers`.
    """
    numbers = np.full((len(columns[0]) if columns else 0, len(columns)), np.nan)
    for j, values in enumerate(columns):
        texts = {}
        for i, value in enumerate(values):
            if isinstance(value, str):
                texts[i] = value
            elif value is not None:
                numbers[i, j] = value
        if texts:
            numbers[list(texts), j] = as_numbers(pd.Series(list(texts.values()), dtype=object)).to_numpy()
    return numbers


def make_numeric_featurizer(columns: list[str], options: FeaturizeOptions):
    return make_pipeline(
        FunctionTransformer(to_numbers, feature_names_out="one-to-one"),
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        SpreadScaler(),
    )


class SpreadScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Centre on the median and divide by the larger of the IQR's normal spread (IQR / 1.349) and the std.

    No feature ends with a spread above one: dividing by the IQR alone blows up a feature
    whose mass sits in a narrow band (or whose IQR is 0, which RobustScaler leaves unscaled:
    square feet stayed square feet), and that feature then owns the block. Dividing by the
    std alone lets a bimodal feature keep no more weight than noise; the larger of the two
    keeps both in bounds. Features that hold only 0 and 1 (booleans, missing flags) stay
    0/1: scaled to unit spread, a flag set on 2% of the rows would sit 7 units away from
    the rest and split them off.
    """

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite=True)
        q25, median, q75 = np.percentile(X, [25, 50, 75], axis=0)
        spread = np.maximum((q75 - q25) / NORMAL_IQR, X.std(axis=0))
        binary = np.all((X == 0) | (X == 1), axis=0)
        self.center_ = np.where(binary, 0.0, median)
        self.scale_ = np.where(binary | (spread == 0), 1.0, spread)
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite=True)
        return (X - self.center_) / self.scale_


def numeric_profile(frame: pd.DataFrame, column: str, labels: np.ndarray, distances: np.ndarray, seed: int) -> dict:
    from ..insights.profiles import numeric_profile

    return numeric_profile(frame[column], labels)


NUMERIC = Modality(
    "numeric", ("numeric",), make_numeric_featurizer, "median impute + missing flag, scaled by max(IQR / 1.349, std)",
    checks={"numeric": (ColumnCheck(lambda s: ~non_numeric_rows(s), "numeric_values", "values are not numbers",
                                    "fix or blank these values, or set the column's role to categorical in a "
                                    "roles file"),
                        ColumnCheck(lambda s: ~np.isinf(as_numbers(s)), "finite_values",
                                    "values are infinite (inf or -inf)",
                                    "replace them with finite numbers, or blank them to make them missing"))},
    profile=numeric_profile,
)
