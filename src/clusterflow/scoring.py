"""Scores of one clustering: on the validation rows, on more rows, against structureless data, under resampling.

Noise rule (density algorithms): silhouette, Calinski-Harabasz and Davies-Bouldin
are computed on the clustered (non-noise) rows, and the silhouette is then
multiplied by the clustered fraction, i.e. each noise row scores 0, the value a
singleton gets. A model cannot climb the leaderboard by calling hard rows noise.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from sklearn import config_context
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score, silhouette_score
from threadpoolctl import threadpool_limits

from .algorithms import NOISE

SILHOUETTE_WORKING_MEMORY_MB = 128
REFERENCE_ROWS, REFERENCE_DRAWS = 1_000, 2
MIN_CLUSTER_SHARE, MIN_CLUSTER_ROWS = 0.02, 5  # smaller clusters count as noise in the selection score
STRUCTURE_ROWS, STRUCTURE_COMPONENTS, STRUCTURE_K = 2_000, 10, (2, 3, 4, 6)


def score_labels(X: np.ndarray, labels: np.ndarray, *, sample_size: int, seed: int) -> dict:
    """Silhouette (on a seeded sample when large), CH, DB, sizes and noise fraction."""
    clustered = labels != NOISE
    noise_fraction = float(1 - clustered.mean()) if len(labels) else 0.0
    sizes = {int(c): int(n) for c, n in zip(*np.unique(labels, return_counts=True))}
    scores = {"clusters_in_validation": len(set(labels[clustered].tolist())), "noise_fraction": noise_fraction,
              "cluster_sizes": sizes, "silhouette": np.nan, "calinski_harabasz": np.nan, "davies_bouldin": np.nan}
    Xc, yc = X[clustered], labels[clustered]
    if len(np.unique(yc)) < 2 or len(np.unique(yc)) >= len(yc):
        scores["note"] = "fewer than 2 clusters among the validation rows: scores undefined"
        return scores
    scores.update(
        silhouette=clustered_silhouette(X, labels, sample_size=sample_size, seed=seed),
        calinski_harabasz=float(calinski_harabasz_score(Xc, yc)),
        davies_bouldin=float(davies_bouldin_score(Xc, yc)),
    )
    return scores


def clustered_silhouette(X: np.ndarray, labels: np.ndarray, *, sample_size: int, seed: int) -> float:
    """Silhouette under the noise rule (noise rows score 0); NaN with fewer than two clusters."""
    clustered = labels != NOISE
    Xc, yc = X[clustered], labels[clustered]
    if len(np.unique(yc)) < 2 or len(np.unique(yc)) >= len(yc):
        return float("nan")
    # Distances in 128 MB chunks rather than scikit-learn's default 1 GB: candidates score side by side.
    with config_context(working_memory=SILHOUETTE_WORKING_MEMORY_MB):
        silhouette = silhouette_score(Xc, yc, sample_size=min(sample_size, len(yc)), random_state=seed)
    return float(silhouette) * float(clustered.mean())


def agreement(reference: np.ndarray, other: np.ndarray) -> float:
    """Adjusted Rand index between two labelings of the same rows (noise is one more label)."""
    return float(adjusted_rand_score(reference, other))


def mixture_bic(clusterer, X: np.ndarray) -> float:
    """The Bayesian information criterion of a fitted mixture on ``X`` (lower is better); NaN for other models."""
    estimator = getattr(clusterer, "estimator_", None)
    return float(estimator.bic(X)) if hasattr(estimator, "bic") else float("nan")


def mean_agreement(labels) -> dict[str, float]:
    """Each labeling's mean adjusted Rand index with every other one of the same rows (NaN when alone).

    ``labels``: name -> labels of the same rows (a dict of arrays, or a DataFrame's columns).

    The board's consensus: a clustering that many different models also find is less likely
    an artefact of one algorithm's assumptions.
    """
    names = list(labels)
    if len(names) < 2:
        return {name: float("nan") for name in names}
    pairwise = np.zeros((len(names), len(names)))
    for i, j in zip(*np.triu_indices(len(names), k=1)):
        pairwise[i, j] = pairwise[j, i] = agreement(labels[names[i]], labels[names[j]])
    return {name: float(total) / (len(names) - 1) for name, total in zip(names, pairwise.sum(axis=1))}


def reference_silhouette(X: np.ndarray, n_clusters: int, seed: int) -> float:
    """The silhouette k-means reaches with ``n_clusters`` on structureless data of ``X``'s spread.

    Gaussian draws with the variances of ``X``'s principal components: silhouette favours
    few clusters even where there are none (two halves of one elongated cloud score about
    0.4), so a clustering is judged by how far it rises above this reference.
    """
    centred = X - X.mean(axis=0)
    spread = np.linalg.svd(centred, full_matrices=False, compute_uv=False) / np.sqrt(max(len(X) - 1, 1))
    return _reference_silhouette(tuple(np.round(spread, 12)), min(len(X), REFERENCE_ROWS), n_clusters, seed)


@lru_cache(maxsize=256)
def _reference_silhouette(spread: tuple[float, ...], rows: int, n_clusters: int, seed: int) -> float:
    # Cached: every algorithm with the same cluster count, scored on the same rows, shares it.
    rng = np.random.default_rng(seed)
    silhouettes = []
    with threadpool_limits(limits=1):  # small fits: threads only contend with the candidates beside them
        for _ in range(REFERENCE_DRAWS):
            Z = rng.normal(size=(rows, len(spread))) * np.asarray(spread)
            labels = KMeans(n_clusters=n_clusters, n_init=1, random_state=seed).fit_predict(Z)
            silhouettes.append(silhouette_score(Z, labels) if len(np.unique(labels)) > 1 else 0.0)
    return float(np.mean(silhouettes))


def without_tiny_clusters(labels: np.ndarray) -> np.ndarray:
    """``labels`` with clusters of fewer than 2% of the rows (at least 5) turned into noise.

    A few outlying rows split off as a cluster give a high silhouette and no segment.
    """
    labels = labels.copy()
    clusters, sizes = np.unique(labels[labels != NOISE], return_counts=True)
    tiny = clusters[sizes < max(MIN_CLUSTER_ROWS, MIN_CLUSTER_SHARE * len(labels))]
    labels[np.isin(labels, tiny)] = NOISE
    return labels


def silhouette_excess(X: np.ndarray, labels: np.ndarray, *, sample_size: int, seed: int,
                      silhouette: float | None = None) -> tuple[float, float]:
    """(silhouette minus the structureless reference's, the reference), tiny clusters counted as noise.

    ``silhouette`` is ``labels``' own clustered silhouette when the caller has it (same sample
    and seed): reused when no cluster is tiny.
    """
    kept = without_tiny_clusters(labels)
    n_clusters = len(np.unique(kept[kept != NOISE]))
    if n_clusters < 2:
        return float("nan"), float("nan")
    reference = reference_silhouette(X, n_clusters, seed)
    if silhouette is None or not np.array_equal(kept, labels):
        silhouette = clustered_silhouette(X, kept, sample_size=sample_size, seed=seed)
    return silhouette - reference, reference


def cluster_structure(X: np.ndarray, seed: int) -> float:
    """How much cluster structure ``X`` holds: the highest silhouette excess of a k-means with 2, 3, 4 or 6 clusters.

    Measured on at most 2,000 seeded rows and 10 principal components (a block of a feature
    matrix, before any clustering); NaN when ``X`` is constant or too small to split.
    """
    rng = np.random.default_rng(seed)
    if len(X) > STRUCTURE_ROWS:
        X = X[rng.choice(len(X), STRUCTURE_ROWS, replace=False)]
    X = X - X.mean(axis=0)
    if not X.var(axis=0).sum() > 0:
        return float("nan")
    if X.shape[1] > STRUCTURE_COMPONENTS:
        X = PCA(min(STRUCTURE_COMPONENTS, len(X)), random_state=seed).fit_transform(X)
    excesses = [float("nan")]
    with threadpool_limits(limits=1):  # small fits; the run's other work keeps the cores
        for k in (k for k in STRUCTURE_K if k < len(X)):
            labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(X)
            excesses.append(silhouette_excess(X, labels, sample_size=STRUCTURE_ROWS, seed=seed)[0])
    return float(np.nanmax(excesses)) if np.isfinite(excesses).any() else float("nan")
