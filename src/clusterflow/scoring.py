"""Scores of one clustering on the validation rows.

Noise rule (density algorithms): silhouette, Calinski-Harabasz and Davies-Bouldin
are computed on the clustered (non-noise) rows, and the silhouette is then
multiplied by the clustered fraction, i.e. each noise row scores 0, the value a
singleton gets. A model cannot climb the leaderboard by calling hard rows noise.
"""
from __future__ import annotations

import numpy as np
from sklearn import config_context
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from .algorithms import NOISE

SILHOUETTE_WORKING_MEMORY_MB = 128


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
    # Distances in 128 MB chunks rather than scikit-learn's default 1 GB: candidates score side by side.
    with config_context(working_memory=SILHOUETTE_WORKING_MEMORY_MB):
        silhouette = silhouette_score(Xc, yc, sample_size=min(sample_size, len(yc)), random_state=seed)
    scores.update(
        silhouette=float(silhouette) * (1 - noise_fraction),
        calinski_harabasz=float(calinski_harabasz_score(Xc, yc)),
        davies_bouldin=float(davies_bouldin_score(Xc, yc)),
    )
    return scores
