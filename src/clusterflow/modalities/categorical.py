"""Categorical columns: one-hot of the frequent levels plus "other", missing as a level."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from ..roles import is_missing
from .base import FeaturizeOptions, Modality

MAX_LEVELS = 30  # per column, the "other" level included: the block's width stays bounded
MIN_LEVEL_FREQUENCY = 0.005
MISSING_LEVEL = "(missing)"


def to_labels(frame: pd.DataFrame) -> np.ndarray:
    """Every value as a string label; missing values become their own level."""
    return np.column_stack([
        frame[c].astype("string").where(~is_missing(frame[c]), MISSING_LEVEL).fillna(MISSING_LEVEL).to_numpy(dtype=object)
        for c in frame.columns
    ])


def make_categorical_featurizer(columns: list[str], options: FeaturizeOptions):
    return make_pipeline(
        FunctionTransformer(to_labels, feature_names_out="one-to-one"),
        OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_LEVELS,
                      min_frequency=MIN_LEVEL_FREQUENCY, sparse_output=False),
    )


CATEGORICAL = Modality("categorical", ("categorical",), make_categorical_featurizer,
                       f"one-hot of up to {MAX_LEVELS - 1} frequent levels + other, missing as a level")
