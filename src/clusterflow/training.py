"""One candidate = one (algorithm, k): fit on the train matrix, score on the validation matrix.

:func:`fit_and_score` is what runs on a Dask worker; it never raises for a failed
fit, it returns the error so the leaderboard can show it.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from .algorithms import REGISTRY, Algorithm, Clusterer
from .scoring import score_labels


@dataclass(frozen=True)
class CandidateSpec:
    """What to train: an algorithm, its cluster count (None for density algorithms), a seed."""

    algorithm: str
    k: int | None
    seed: int = 0

    @property
    def model_id(self) -> str:
        return self.algorithm if self.k is None else f"{self.algorithm}-k{self.k}"


@dataclass
class CandidateResult:
    """A trained (or failed) candidate: the fitted clusterer and its validation scores."""

    spec: CandidateSpec
    clusterer: Clusterer | None = None
    scores: dict = field(default_factory=dict)
    fit_seconds: float = float("nan")
    score_seconds: float = float("nan")
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def candidate_specs(algorithms: list[Algorithm], k_values: list[int], seed: int) -> list[CandidateSpec]:
    """Every k-taking algorithm for every k; density algorithms once."""
    return [
        CandidateSpec(a.name, k, seed)
        for a in algorithms
        for k in (k_values if a.takes_k else [None])
    ]


def fit_and_score(spec: CandidateSpec, X_train, X_validation: np.ndarray, *, silhouette_sample: int,
                  threads: int | None = None, train_rows: int | None = None) -> CandidateResult:
    """Fit one candidate and score it on the validation rows; failures come back as ``error``.

    ``X_train`` is a matrix, or a Dask array spread over the workers; ``train_rows`` is
    the size of the whole train partition when ``X_train`` is a sample of it.
    """
    result = CandidateResult(spec)
    try:
        with threadpool_limits(limits=threads):
            started = time.perf_counter()
            clusterer = Clusterer(spec.algorithm, spec.k, spec.seed).fit(X_train)
            result.fit_seconds = time.perf_counter() - started
            started = time.perf_counter()
            labels = clusterer.predict(X_validation)
            result.scores = score_labels(X_validation, labels, sample_size=silhouette_sample, seed=spec.seed)
            result.score_seconds = time.perf_counter() - started
        result.clusterer = clusterer
        if clusterer.fit_rows_ < (train_rows or X_train.shape[0]):
            result.scores["note"] = f"fitted on a {clusterer.fit_rows_:,}-row sample; other rows assigned by predict"
    except Exception as exc:  # a failed candidate is a leaderboard row, not a crashed run
        result.error = f"{type(exc).__name__}: {exc}"
        result.scores["traceback"] = traceback.format_exc(limit=5)
    return result


def describe(spec: CandidateSpec) -> str:
    return REGISTRY[spec.algorithm].description
