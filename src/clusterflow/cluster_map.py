"""A map of the rows by cluster: a 2-D projection of a seeded sample of the model's reduced features.

The report draws it as a scatter, one mark per sampled row in its cluster's colour.
PCA is the default (fast, deterministic, distances stay linear); t-SNE keeps local
neighbourhoods; UMAP does too, when ``umap-learn`` is installed.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from .errors import InputValidationError, Problem

MAP_PROJECTIONS = ("pca", "tsne", "umap")
MAX_MAP_ROWS = 3000  # marks in the report: ~250 bytes each, so the map stays under 1 MB at any row count
SHOWN_VALUES = 3  # input values in each mark's hover
MAX_VALUE_CHARS = 60


@dataclass
class ClusterMap:
    """Sampled rows placed in 2-D.

    Attributes
    ----------
    points : DataFrame
        ``row`` (position in the table), ``row_id``, ``x``, ``y`` (each in [0, 1]), ``cluster``,
        ``p_<cluster>`` per cluster, and ``values`` (the first few input values as ``(column, text)`` pairs).
    projection : str
        One of :data:`MAP_PROJECTIONS`.
    total_rows : int
        Rows of the table (the map shows a sample of them when larger than ``max_rows``).
    explained_variance : float or None
        Share of the reduced features' variance the two PCA axes hold (PCA only).
    """

    points: pd.DataFrame
    projection: str
    total_rows: int
    explained_variance: float | None = None


def cluster_map(model, frame: pd.DataFrame, X: np.ndarray, *, projection: str = "pca", max_rows: int = MAX_MAP_ROWS,
                random_state: int = 0) -> ClusterMap:
    """Place a seeded sample of the rows of ``frame`` by a 2-D projection of their reduced features ``X``.

    Parameters
    ----------
    model : ClusterModel
        The fitted model whose clusters colour the map.
    frame : DataFrame
        The run's input table.
    X : ndarray of shape (n_rows, n_components)
        The reduced features of every row, in table order (the run's ``features/``).
    projection : {"pca", "tsne", "umap"}, default="pca"
    max_rows : int, default=3000
    random_state : int, default=0

    Returns
    -------
    ClusterMap
    """
    check_projection(projection)
    rows = np.arange(len(X))
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(random_state).choice(len(X), max_rows, replace=False))
    sample = X[rows]
    xy, explained = _project(sample, projection, random_state)
    span = np.ptp(xy, axis=0)
    xy = (xy - xy.min(axis=0)) / np.where(span > 0, span, 1.0)
    clusterer = model.pipeline_[-1]
    row_ids = frame[model.id_column_].to_numpy()[rows] if model.id_column_ else rows
    points = pd.DataFrame({"row": rows, "row_id": row_ids, "x": xy[:, 0], "y": xy[:, 1],
                           "cluster": clusterer.predict(sample).astype(int)})
    proba = clusterer.predict_proba(sample)
    for j, cluster in enumerate(clusterer.clusters_):
        points[f"p_{int(cluster)}"] = proba[:, j]
    shown = [c for c, role in model.roles_.items() if role not in ("id", "ignore")][:SHOWN_VALUES]
    points["values"] = [[(c, _text(v)) for c, v in zip(shown, values)]
                        for values in frame[shown].iloc[rows].itertuples(index=False, name=None)]
    return ClusterMap(points, projection, len(X), explained)


def check_projection(projection: str) -> None:
    """Refuse an unknown projection, or UMAP when ``umap-learn`` is not installed, with what to do."""
    if projection not in MAP_PROJECTIONS:
        raise InputValidationError([Problem(rule=f"unknown map projection {projection!r}",
                                            hint=f"choose one of {', '.join(MAP_PROJECTIONS)}")])
    if projection == "umap" and importlib.util.find_spec("umap") is None:
        raise InputValidationError([Problem(rule="the UMAP projection needs the umap-learn package, not installed",
                                            hint="pip install umap-learn, or choose --map-projection pca or tsne")])


def _project(sample: np.ndarray, projection: str, random_state: int) -> tuple[np.ndarray, float | None]:
    if sample.shape[1] < 2:  # a single reduced feature: the map is a line
        return np.column_stack([sample[:, 0], np.zeros(len(sample))]), None
    if projection == "tsne" and len(sample) > 5:
        return TSNE(n_components=2, perplexity=min(30.0, (len(sample) - 1) / 3), init="pca",
                    random_state=random_state).fit_transform(sample), None
    if projection == "umap" and len(sample) > 5:
        import umap

        return umap.UMAP(n_components=2, n_neighbors=min(15, len(sample) - 1),
                         random_state=random_state).fit_transform(sample), None
    pca = PCA(n_components=2, random_state=random_state).fit(sample)
    return pca.transform(sample), float(pca.explained_variance_ratio_.sum())


def _text(value) -> str:
    missing = pd.isna(value)
    text = "" if isinstance(missing, (bool, np.bool_)) and missing else str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"
