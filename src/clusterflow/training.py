"""One candidate = one (algorithm, k): fit on the train matrix, score it.

:func:`fit_and_score` is what runs on a Dask worker; it never raises for a failed
fit, it returns the error so the leaderboard can show it. Besides the validation
scores it measures the silhouette on more rows than a small validation partition
holds, the stability of the clustering under refits on resamples and, for mixtures, the BIC;
it keeps the labels of the scoring rows, from which the leaderboard measures how far the
candidates agree.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

import numpy as np
from dask.base import is_dask_collection
from threadpoolctl import threadpool_limits

from .algorithms import REGISTRY, Algorithm, Clusterer
from .scoring import agreement, clustered_silhouette, mixture_bic, score_labels, silhouette_excess

STABILITY_RESAMPLES = 2
STABILITY_FRACTION = 0.8  # of the train rows in each resample
STABILITY_MAX_ROWS = 5_000  # resamples of large tables stay this small, so the refits cost little


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
    scoring_labels: np.ndarray | None = None  # of the scoring rows, which every candidate of a run shares
    scoring_keys: np.ndarray | None = None  # which rows those are (see scoring_rows)

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
                  threads: int | None = None, train_rows: int | None = None,
                  train_sample: np.ndarray | None = None) -> CandidateResult:
    """Fit one candidate and score it on the validation rows; failures come back as ``error``.

    ``X_train`` is a matrix, or a Dask array spread over the workers; ``train_rows`` is
    the size of the whole train partition when ``X_train`` is a sample of it.
    ``train_sample``: the positions in the train partition of the sample every candidate
    tops its scoring rows up from (see :func:`scoring_rows`), when the run has one.
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
            X_scored, keys = scoring_rows(X_train, X_validation, silhouette_sample, spec.seed, train_sample)
            scored_labels = clusterer.predict(X_scored)
            result.scores["silhouette_pooled"] = (
                result.scores["silhouette"] if len(X_scored) == len(X_validation)
                else clustered_silhouette(X_scored, scored_labels, sample_size=silhouette_sample, seed=spec.seed))
            result.scores["silhouette_excess"], result.scores["reference_silhouette"] = silhouette_excess(
                X_scored, scored_labels, sample_size=silhouette_sample, seed=spec.seed,
                silhouette=result.scores["silhouette_pooled"])
            result.scores["stability"] = resample_stability(spec, X_train, X_scored, scored_labels)
            result.scores["bic"] = mixture_bic(clusterer, X_scored)
            result.scoring_labels, result.scoring_keys = scored_labels.astype(np.int32), keys
            result.score_seconds = time.perf_counter() - started
        result.clusterer = clusterer
        if clusterer.fit_rows_ < (train_rows or X_train.shape[0]):
            result.scores["note"] = f"fitted on a {clusterer.fit_rows_:,}-row sample; other rows assigned by predict"
    except Exception as exc:  # a failed candidate is a leaderboard row, not a crashed run
        result.error = f"{type(exc).__name__}: {exc}"
        result.scores["traceback"] = traceback.format_exc(limit=5)
    return result


def scoring_rows(X_train, X_validation: np.ndarray, size: int, seed: int,
                 sample: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The validation rows, topped up to ``size`` rows with a seeded sample of train rows when fewer,
    and the rows' keys: ``-1 - i`` for validation row ``i``, a train row's position in the train partition.

    Silhouette on a small validation partition is noise (36 rows of a 178-row table told
    k=2 from k=3 by 0.015); the clusterer's labels of train rows are as good as any.
    ``sample`` (sorted positions in the train partition) limits the top-up to those rows;
    ``X_train`` is then the whole partition or the sample itself, and both give the same rows
    for the same seed. The keys let labels of scoring rows drawn another time (a rerun on
    another cluster) be compared on the rows they share.
    """
    keys = -1 - np.arange(len(X_validation))
    candidates = X_train.shape[0] if sample is None else len(sample)
    missing = min(size - len(X_validation), candidates)
    if missing <= 0:
        return X_validation, keys
    rows = np.sort(np.random.default_rng(seed).choice(candidates, missing, replace=False))
    positions = rows if sample is None else sample[rows]
    within = rows if X_train.shape[0] == candidates else positions  # X_train is the sample, or the whole partition
    return np.vstack([X_validation, _rows(X_train, within)]), np.concatenate([keys, positions])


def resample_stability(spec: CandidateSpec, X_train, X_scored: np.ndarray, labels: np.ndarray) -> float:
    """How much the clustering survives resampling: the mean adjusted Rand index between ``labels``
    (the model's, of ``X_scored``) and those of refits on seeded subsamples of the train rows.

    1 means every refit finds the same clusters; near 0, clusters that the sample decides.
    """
    n_rows = X_train.shape[0]
    size = min(max(2, round(STABILITY_FRACTION * n_rows)), STABILITY_MAX_ROWS)
    rng = np.random.default_rng(spec.seed + 1)
    agreements = []
    with threadpool_limits(limits=1):  # refits of at most 5,000 rows: threads would only contend
        for resample in range(STABILITY_RESAMPLES):
            rows = np.sort(rng.choice(n_rows, size, replace=False))
            refit = Clusterer(spec.algorithm, spec.k, spec.seed + resample + 1).fit(_rows(X_train, rows))
            agreements.append(agreement(labels, refit.predict(X_scored)))
    return float(np.mean(agreements))


def _rows(X, rows: np.ndarray) -> np.ndarray:
    """Rows of a matrix or of a Dask array spread over the workers."""
    return np.asarray(X[rows].compute()) if is_dask_collection(X) else X[rows]


def describe(spec: CandidateSpec) -> str:
    return REGISTRY[spec.algorithm].description
