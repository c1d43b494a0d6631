"""What every modality provides, and the block scaler that balances modalities."""
from __future__ import annotations

from dataclasses import dataclass, field
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


# A role inference rule: (column name, values, present values) -> a RoleDecision, or None to pass.
Rule = Callable[[str, pd.Series, pd.Series], object]
# An insight profile: (table, column, cluster labels, distance to the cluster centre, seed) -> a JSON-safe dict
# with a "kind" (the report cell that draws it) and per-cluster "stats" (keys "all", "0", "1", ...).
Profile = Callable[[pd.DataFrame, str, np.ndarray, np.ndarray, int], dict]
# A report cell: (profile, cluster key, every cluster, the report's images) -> HTML of one cell.
ReportCell = Callable[[dict, str, list, object], str]


@dataclass(frozen=True)
class ColumnCheck:
    """A rule every column of a role must pass, run by pandera over the whole column.

    ``test`` returns a boolean mask of the rows that pass (or one bool); ``error`` is the
    rule the user reads, ``hint`` what to do about it. ``row_wise`` says that a row passes
    or fails on its own value, whatever the other rows hold (False for a rule on the whole
    column, such as "95% parse one way"): such a check can run over many requests' rows at once.
    """

    test: Callable[[pd.Series], object]
    name: str
    error: str
    hint: str
    row_wise: bool = True


@dataclass(frozen=True)
class Modality:
    """Everything about one kind of column, declared once; :func:`clusterflow.modalities.register` lists it.

    A block of the feature matrix: the roles it featurizes and the featurizer of its
    columns; the rules that infer its roles, the checks its columns must pass, how
    insights profile a column per cluster and how the report draws that profile.
    """

    name: str
    roles: tuple[str, ...]
    make_featurizer: Callable[[list[str], FeaturizeOptions], TransformerMixin]
    description: str
    describe_fitted: Callable[[TransformerMixin], dict] | None = None  # what the manifest records of a fitted featurizer
    # Inference: `early_rules` run before the numeric rules (a number may be a time or a coordinate),
    # `rules` after them and before the label rules (ids, prose, categories).
    early_rules: tuple[Rule, ...] = ()
    rules: tuple[Rule, ...] = ()
    # After every column has a role: settle decisions that depend on other columns (geo pairs
    # latitudes with longitudes). Takes the decisions and the inferred (not overridden) columns.
    settle_roles: Callable[[list, set], list] | None = None
    checks: dict[str, tuple[ColumnCheck, ...]] = field(default_factory=dict)  # role -> checks of its columns
    profile: Profile | None = None  # insights of one column of this modality's roles
    report_cell: ReportCell | None = None  # how the report draws a profile of this modality's kind
    # Whether the block's share of the variance follows its measured cluster structure
    # (clusterflow.blueprint.weigh_blocks_by_structure); False where that measure misleads.
    weighed_by_structure: bool = True


class TotalVarianceScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Scale a block so that the sum of its columns' variances equals ``total_variance``.

    Placed last in each modality's featurizer, it makes a block's weight independent
    of its width: a 384-wide text embedding and one numeric column each carry the
    variance they are given, not the variance their width would give them.

    Parameters
    ----------
    total_variance : float, default=1.0
        The block's total variance after scaling (its number of input columns times
        the user's weight for the modality, times its :meth:`reweigh` share).

    Attributes
    ----------
    scale_ : float
        The factor the block is multiplied by.
    structure_share_ : float
        Only after :meth:`reweigh`: the share its cluster structure gave the block.
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

    def reweigh(self, share: float) -> "TotalVarianceScaler":
        """Multiply the fitted block's total variance by ``share`` (its cluster structure's share,
        :func:`clusterflow.blueprint.weigh_blocks_by_structure`), as if it had been fitted with it."""
        check_is_fitted(self)
        self.total_variance *= share
        self.scale_ *= float(np.sqrt(share))
        self.structure_share_ = share
        return self
