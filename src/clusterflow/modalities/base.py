"""What every modality provides, and the block scaler that balances modalities."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from numbers import Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import InputValidationError, Problem


def require_columns(X: pd.DataFrame, columns) -> None:
    """Raise one report naming every column of ``columns`` that ``X`` lacks."""
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise InputValidationError([Problem(rule="column is missing", column=c,
                                            hint="the model was trained with it; add it to the table")
                                    for c in missing])


@dataclass(frozen=True)
class FeaturizeOptions:
    """Run-level settings that featurizers need besides their columns.

    Modalities add the fields they need here (with defaults), and
    :func:`clusterflow.runs.featurize_options` fills them from the run parameters.
    """

    seed: int = 0
    text_featurizer: str = "embedding"
    text_model: str | None = None
    text_backend: str = "onnx"  # see clusterflow.parameters.RunParameters.text_backend
    cache: str | None = None  # the run store cache root; featurizers keep their caches in subfolders
    image_model: str | None = None  # a local CLIP-style sentence-transformers model; None: low-level features
    on_bad_image: str = "error"  # or "missing": unreadable image files become missing values
    roles: tuple[tuple[str, str], ...] = ()  # (column, role) of every column, for blocks that mix roles (geo)


@dataclass(frozen=True)
class Modality:
    """A block of the feature matrix: its roles, and a featurizer factory for its columns."""

    name: str
    roles: tuple[str, ...]
    make_featurizer: Callable[[list[str], FeaturizeOptions], TransformerMixin]
    description: str
    describe_fitted: Callable[[TransformerMixin], dict] | None = None  # what the manifest records of a fitted featurizer


class TotalVarianceScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Scale a block so that the sum of its columns' variances equals ``total_variance``.

    Placed last in each modality's featurizer, it makes a block's weight independent
    of its width: a 384-wide text embedding and one numeric column each carry the
    variance they are given, not the variance their width would give them.

    Parameters
    ----------
    total_variance : float, default=1.0
        The block's total variance after scaling (its number of input columns times
        the user's weight for the modality).
    """

    _parameter_constraints: dict = {"total_variance": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, total_variance: float = 1.0):
        self.total_variance = total_variance

    def fit(self, X, y=None):
        self._validate_params()
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite=True)
        total = float(X.var(axis=0).sum())
        self.scale_ = float(np.sqrt(self.total_variance / total)) if total > 0 else 0.0
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite=True)
        return X * self.scale_
