"""The registry of clustering algorithms and what each can do.

Every algorithm becomes a :class:`Clusterer`: a scikit-learn estimator with
``fit``, ``predict`` and ``predict_proba``. Algorithms that cannot assign new points
themselves (``predict=None``) get the inductive path: a k-nearest-neighbours
classifier fitted on their training labels. Algorithms whose cost grows fast with
the row count are fitted on a seeded sample (``max_fit_rows``) and the remaining
rows are assigned by prediction.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Callable

import hdbscan
import numpy as np
from dask.base import is_dask_collection
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import AgglomerativeClustering, KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.metrics import euclidean_distances, pairwise_distances_argmin
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

NOISE = -1
INIT_SAMPLE_ROWS = 20_000  # k-means++ runs on this many rows before Lloyd's iterations over a spread matrix


@dataclass(frozen=True)
class Algorithm:
    """What the fan-out and the model need to know about one clustering algorithm.

    ``build(k, seed, n_rows)`` returns an unfitted estimator; ``predict`` and
    ``proba`` assign new points natively (None: use the inductive path).
    ``build_distributed(k, seed, init)``, where given, fits a Dask array spread over
    the workers (for train matrices too large to send whole to each worker), starting
    from the centres ``init`` that k-means++ found on a sample.
    """

    name: str
    takes_k: bool
    build: Callable[[int | None, int, int], BaseEstimator]
    description: str
    predict: Callable | None = None
    proba: Callable | None = None
    max_fit_rows: int | None = None
    quick: bool = False
    comprehensive: bool = True
    build_distributed: Callable[[int | None, int, np.ndarray], BaseEstimator] | None = None


def _dask_kmeans(k: int, seed: int, init: np.ndarray) -> BaseEstimator:
    from dask_ml.cluster import KMeans as DaskKMeans  # imported only on the spread path (slow to import)

    return DaskKMeans(n_clusters=k, init=init, random_state=seed)


def _kmeans_proba(estimator, X: np.ndarray, temperature: float) -> np.ndarray:
    # Soft assignment: softmax of negative squared distances, in units of the mean
    # squared distance of training points to their centre.
    distances = estimator.transform(X) ** 2
    return softmax(-distances / temperature, axis=1)


class ProjectedHDBSCAN(ClusterMixin, BaseEstimator):
    """HDBSCAN on the leading principal components of its input.

    Density estimates, and the KD-tree queries behind ``approximate_predict`` and
    ``membership_vector``, degrade with dimension: in 32 dimensions assigning 100k rows
    took 22 s here, in 10 dimensions 6 s, with the same clusters found.
    """

    _parameter_constraints: dict = {
        "min_cluster_size": [Interval(Integral, 2, None, closed="left")],
        "min_samples": [Interval(Integral, 1, None, closed="left")],
        "max_dims": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, min_cluster_size: int = 10, min_samples: int = 10, max_dims: int = 10, random_state: int = 0):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.max_dims = max_dims
        self.random_state = random_state

    def fit(self, X, y=None):
        self._validate_params()
        X = validate_data(self, X, dtype=np.float64, copy=True)  # hdbscan's trees need a writable array
        self.projection_ = (PCA(self.max_dims, random_state=self.random_state).fit(X)
                            if X.shape[1] > self.max_dims else None)
        self.hdbscan_ = hdbscan.HDBSCAN(min_cluster_size=self.min_cluster_size, min_samples=self.min_samples,
                                        prediction_data=True, core_dist_n_jobs=1).fit(self._project(X))
        self.labels_ = self.hdbscan_.labels_
        return self

    def predict(self, X) -> np.ndarray:
        """Cluster of each row by ``approximate_predict`` (-1 = noise)."""
        check_is_fitted(self)
        return np.asarray(hdbscan.approximate_predict(self.hdbscan_, self._project(self._validate(X)))[0])

    def predict_proba(self, X) -> np.ndarray:
        """Membership of each row in each cluster (``membership_vector``); rows may sum to less than 1."""
        check_is_fitted(self)
        return np.atleast_2d(hdbscan.membership_vector(self.hdbscan_, self._project(self._validate(X))))

    def _validate(self, X) -> np.ndarray:
        return validate_data(self, X, dtype=np.float64, reset=False, copy=True)

    def _project(self, X) -> np.ndarray:
        return X if self.projection_ is None else self.projection_.transform(X)


def _min_cluster_size(n_rows: int) -> int:
    return max(10, round(0.02 * n_rows))


REGISTRY: dict[str, Algorithm] = {
    a.name: a
    for a in [
        Algorithm(
            "kmeans", True,
            lambda k, seed, n: KMeans(n_clusters=k, n_init=3, random_state=seed),
            "k-means (scikit-learn, k-means++ init, best of 3; dask-ml's k-means|| when the matrix is spread "
            "over the workers)",
            predict=lambda est, X: est.predict(X), quick=True,
            build_distributed=_dask_kmeans,
        ),
        Algorithm(
            "minibatch_kmeans", True,
            lambda k, seed, n: MiniBatchKMeans(n_clusters=k, batch_size=8192, n_init=3, random_state=seed),
            "mini-batch k-means (batches of 8,192 rows): for millions of rows",
            predict=lambda est, X: est.predict(X), comprehensive=False,
        ),
        Algorithm(
            "gmm", True,
            lambda k, seed, n: GaussianMixture(n_components=k, covariance_type="full", init_params="k-means++",
                                               reg_covar=1e-4, random_state=seed),
            "Gaussian mixture, full covariance, k-means++ init",
            predict=lambda est, X: est.predict(X), proba=lambda est, X: est.predict_proba(X),
        ),
        Algorithm(
            "gmm_diag", True,
            lambda k, seed, n: GaussianMixture(n_components=k, covariance_type="diag", init_params="k-means++",
                                               reg_covar=1e-4, random_state=seed),
            "Gaussian mixture, diagonal covariance: about 3x cheaper than full on wide or large data",
            predict=lambda est, X: est.predict(X), proba=lambda est, X: est.predict_proba(X), comprehensive=False,
        ),
        Algorithm(
            "ward", True,
            lambda k, seed, n: AgglomerativeClustering(n_clusters=k, linkage="ward"),
            "Ward agglomerative clustering; new rows assigned by a k-NN classifier on its labels",
            max_fit_rows=10_000,
        ),
        Algorithm(
            "hdbscan", False,
            lambda k, seed, n: ProjectedHDBSCAN(min_cluster_size=_min_cluster_size(n),
                                                min_samples=min(_min_cluster_size(n), 10), random_state=seed),
            "HDBSCAN on up to 10 principal components (finds the cluster count; rows in no cluster are noise, -1)",
            predict=lambda est, X: est.predict(X), proba=lambda est, X: est.predict_proba(X),
            max_fit_rows=20_000, quick=True,
        ),
    ]
}


def algorithms_for(mode: str, names: list[str] | None = None) -> list[Algorithm]:
    """The algorithms of a run: the named ones, or the default set of the mode."""
    if names:
        unknown = [n for n in names if n not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown algorithm(s) {unknown}; known: {sorted(REGISTRY)}")
        return [REGISTRY[n] for n in names]
    return [a for a in REGISTRY.values() if a.quick or (mode == "comprehensive" and a.comprehensive)]


class FittedCentres(BaseEstimator):
    """Centres fitted elsewhere (dask-ml's k-means over a cluster), assigning rows as k-means does."""

    def __init__(self, cluster_centers: np.ndarray):
        self.cluster_centers = cluster_centers

    def predict(self, X) -> np.ndarray:
        return pairwise_distances_argmin(X, self.cluster_centers)

    def transform(self, X) -> np.ndarray:
        return euclidean_distances(X, self.cluster_centers)


class Clusterer(ClusterMixin, BaseEstimator):
    """Any registered algorithm behind one estimator API with per-cluster probabilities.

    Parameters
    ----------
    algorithm : str
        A name in :data:`REGISTRY`.
    n_clusters : int or None
        The cluster count for algorithms that take one.
    random_state : int
        Seed for the algorithm and for the fitting sample.

    Attributes
    ----------
    estimator_ : the fitted algorithm.
    classifier_ : the inductive classifier, for algorithms that cannot predict.
    clusters_ : ndarray of the cluster labels (noise excluded).
    labels_ : labels of the rows the algorithm was fitted on.
    fit_sample_ : positions of those rows in ``X`` (all rows unless ``max_fit_rows`` applied).
    fit_rows_ : how many rows the algorithm itself was fitted on.
    """

    _parameter_constraints: dict = {
        "algorithm": [str],  # a name in REGISTRY, which tests and plugins may extend at run time
        "n_clusters": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, algorithm: str = "kmeans", n_clusters: int | None = None, random_state: int = 0):
        self.algorithm = algorithm
        self.n_clusters = n_clusters
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit on ``X``: an in-memory matrix, or a Dask array for algorithms with ``build_distributed``."""
        self._validate_params()
        if self.algorithm not in REGISTRY:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; known: {sorted(REGISTRY)}")
        if is_dask_collection(X):
            return self._fit_distributed(X)
        X = validate_data(self, X, dtype=np.float64)
        spec = REGISTRY[self.algorithm]
        if spec.takes_k and self.n_clusters is None:
            raise ValueError(f"{self.algorithm} needs n_clusters")
        sample = np.arange(len(X))
        if spec.max_fit_rows and len(X) > spec.max_fit_rows:
            sample = np.sort(np.random.default_rng(self.random_state).choice(len(X), spec.max_fit_rows, replace=False))
        X_fit = X[sample]
        self.fit_rows_ = len(X_fit)
        self.estimator_ = spec.build(self.n_clusters, self.random_state, len(X_fit)).fit(X_fit)
        fit_labels = np.asarray(self.estimator_.labels_ if hasattr(self.estimator_, "labels_")
                                else self.estimator_.predict(X_fit))
        self.clusters_ = np.unique(fit_labels[fit_labels != NOISE])
        if spec.predict is None:
            clustered = fit_labels != NOISE
            self.classifier_ = KNeighborsClassifier(n_neighbors=min(15, int(clustered.sum())), weights="distance")
            self.classifier_.fit(X_fit[clustered], fit_labels[clustered])
        if isinstance(self.estimator_, (KMeans, MiniBatchKMeans)):
            self.temperature_ = max(self.estimator_.inertia_ / len(X_fit), 1e-12)
        self.fit_sample_, self.labels_ = sample, fit_labels
        return self

    def _fit_distributed(self, X):
        spec = REGISTRY[self.algorithm]
        if spec.build_distributed is None:
            raise ValueError(f"{self.algorithm} cannot fit a matrix spread over Dask workers")
        rng = np.random.default_rng(self.random_state)
        sample = np.sort(rng.choice(X.shape[0], min(X.shape[0], INIT_SAMPLE_ROWS), replace=False))
        init = spec.build(self.n_clusters, self.random_state, len(sample)).fit(X[sample].compute()).cluster_centers_
        model = spec.build_distributed(self.n_clusters, self.random_state, init).fit(X)
        centres = np.asarray(model.cluster_centers_, dtype=np.float64)
        self.estimator_ = FittedCentres(centres)
        self.n_features_in_ = X.shape[1]
        self.fit_rows_ = X.shape[0]
        self.labels_ = np.asarray(model.labels_.compute() if is_dask_collection(model.labels_) else model.labels_)
        self.clusters_ = np.unique(self.labels_)
        # dask-ml's own inertia_ is not scikit-learn's (unsquared distances): recompute it.
        squared = X.map_blocks(lambda block: euclidean_distances(block, centres, squared=True).min(axis=1),
                               drop_axis=1, dtype=np.float64)
        self.temperature_ = max(float(squared.mean().compute()), 1e-12)
        return self

    def predict(self, X) -> np.ndarray:
        """Cluster label of each row (-1 = noise, for density algorithms)."""
        check_is_fitted(self)
        return self._predict(validate_data(self, X, dtype=np.float64, reset=False))

    def predict_proba(self, X) -> np.ndarray:
        """Membership probability of each row in each cluster of ``clusters_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        spec = REGISTRY[self.algorithm]
        if len(self.clusters_) == 0:
            return np.zeros((len(X), 0))
        if isinstance(self.estimator_, (KMeans, MiniBatchKMeans, FittedCentres)):
            return _kmeans_proba(self.estimator_, X, self.temperature_)
        if spec.proba is not None:
            return spec.proba(self.estimator_, X)
        if spec.predict is None:
            return self.classifier_.predict_proba(X)
        labels = spec.predict(self.estimator_, X)
        return (labels[:, None] == self.clusters_[None, :]).astype(float)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        spec = REGISTRY[self.algorithm]
        if spec.predict is None:
            if len(self.clusters_) == 0:
                return np.full(len(X), NOISE)
            return self.classifier_.predict(X)
        return np.asarray(spec.predict(self.estimator_, X)).astype(int)
