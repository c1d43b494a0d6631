"""Numeric columns: median impute with a missing flag, standard scaling.

Standard, not robust, scaling: dividing by the interquartile range blows up features whose
mass sits in a narrow band, and their tails then own the space (on the labelled benchmark,
bench/quality.py, standard scaling raised the best model on the board on average, e.g.
crabs 0.16 -> 0.46 ARI, and the top pick on 9 of 16 tables, lowering it on 2).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ..roles import as_numbers, non_numeric_rows
from .base import ColumnCheck, FeaturizeOptions, Modality


def to_numbers(frame: pd.DataFrame) -> np.ndarray:
    """Columns as floats; missing tokens and booleans handled as in role inference."""
    return np.column_stack([as_numbers(frame[c]).to_numpy() for c in frame.columns])


def make_numeric_featurizer(columns: list[str], options: FeaturizeOptions):
    return make_pipeline(
        FunctionTransformer(to_numbers, feature_names_out="one-to-one"),
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    )


def numeric_profile(frame: pd.DataFrame, column: str, labels: np.ndarray, distances: np.ndarray, seed: int) -> dict:
    from ..insights.profiles import numeric_profile

    return numeric_profile(frame[column], labels)


NUMERIC = Modality(
    "numeric", ("numeric",), make_numeric_featurizer, "median impute + missing flag, standard scaling",
    checks={"numeric": (ColumnCheck(lambda s: ~non_numeric_rows(s), "numeric_values", "values are not numbers",
                                    "fix or blank these values, or set the column's role to categorical in a "
                                    "roles file"),
                        ColumnCheck(lambda s: ~np.isinf(as_numbers(s)), "finite_values",
                                    "values are infinite (inf or -inf)",
                                    "replace them with finite numbers, or blank them to make them missing"))},
    profile=numeric_profile,
)
