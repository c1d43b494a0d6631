"""Feature Associations: how strongly input features relate to each other, pairwise.

Numeric features are binned by quantiles and categorical ones reduced to their
frequent levels (missing is a level of its own), so every pair is scored on the
same footing: normalised mutual information (0 = independent, 1 = each determines
the other) or Cramér's V. Features are ordered by hierarchical clustering of
``1 - association`` so related features sit together.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.spatial.distance import squareform
from scipy.stats.contingency import association, crosstab
from sklearn.metrics import normalized_mutual_info_score

from ..roles import as_numbers, is_missing

METHODS = ("mutual_info", "cramers_v")
ASSOCIATED_ROLES = ("numeric", "categorical")
N_BINS = 10
MAX_LEVELS = 20


@dataclass
class Associations:
    """A symmetric association matrix (in clustered order) and the strongly associated pairs."""

    method: str
    matrix: pd.DataFrame
    strong_pairs: pd.DataFrame


def feature_associations(frame: pd.DataFrame, roles: dict[str, str], features: list[str] | None = None, *,
                         method: str = "mutual_info", max_features: int = 50, max_rows: int = 5000,
                         threshold: float = 0.7, random_state: int = 0) -> Associations:
    """Pairwise association of numeric and categorical features.

    Parameters
    ----------
    frame : DataFrame
        The raw table (a seeded sample of ``max_rows`` rows is used).
    roles : dict of column -> role
        Only numeric and categorical columns are scored.
    features : list of str, optional
        Columns in order of preference (e.g. by Feature Impact); the first
        ``max_features`` eligible ones are kept. Default: table order.
    method : {"mutual_info", "cramers_v"}, default="mutual_info"
    max_features : int, default=50
    max_rows : int, default=5000
    threshold : float, default=0.7
        Pairs at or above it are listed as strongly associated (candidates to drop).
    random_state : int, default=0

    Returns
    -------
    Associations

    Examples
    --------
    >>> result = feature_associations(table, {"a": "numeric", "b": "numeric"})  # doctest: +SKIP
    >>> result.strong_pairs  # doctest: +SKIP
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    order = features if features is not None else list(frame.columns)
    columns = [c for c in order if roles.get(c) in ASSOCIATED_ROLES][:max_features]
    if len(frame) > max_rows:
        frame = frame.iloc[np.sort(np.random.default_rng(random_state).choice(len(frame), max_rows, replace=False))]
    codes = {c: _codes(frame[c], roles[c]) for c in columns}
    n = len(columns)
    matrix = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i, j] = matrix[j, i] = _association(codes[columns[i]], codes[columns[j]], method)
    if n > 2:
        leaves = leaves_list(linkage(squareform(1 - matrix, checks=False), method="average", optimal_ordering=True))
        matrix, columns = matrix[np.ix_(leaves, leaves)], [columns[i] for i in leaves]
    i, j = np.triu_indices(n, k=1)
    names = np.asarray(columns, dtype=object)
    strong = pd.DataFrame({"feature_a": names[i], "feature_b": names[j], "association": matrix[i, j]})
    strong = strong[strong["association"] >= threshold].sort_values("association", ascending=False, kind="stable")
    return Associations(method, pd.DataFrame(matrix, index=columns, columns=columns), strong.reset_index(drop=True))


def _codes(values: pd.Series, role: str) -> np.ndarray:
    missing = is_missing(values).to_numpy()
    if role == "numeric":
        numbers = as_numbers(values)
        # few distinct values (a 0/1 flag) keep one code each; more are cut into quantile bins
        binned = pd.qcut(numbers, q=N_BINS, labels=False, duplicates="drop") \
            if numbers.nunique() > N_BINS else numbers.rank(method="dense")
        codes = np.array(binned.fillna(-1), dtype=int)
    else:
        text = values.astype("string").where(~missing)
        frequent = set(text.value_counts().index[:MAX_LEVELS])
        codes = np.array(pd.factorize(text.where(text.isin(frequent) | text.isna(), "(other)"))[0])
    codes[missing] = -1
    return codes


def _association(a: np.ndarray, b: np.ndarray, method: str) -> float:
    if len(np.unique(a)) < 2 or len(np.unique(b)) < 2:
        return 0.0
    if method == "mutual_info":
        return float(normalized_mutual_info_score(a, b))
    return float(association(crosstab(a, b).count, method="cramer"))
