"""dask-ml's k-means on a local Dask cluster against scikit-learn's, after aligning the clusters."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from clusterflow.algorithms import Clusterer


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=900, centers=4, n_features=5, cluster_std=0.8, random_state=2)
    return X, y


def test_dask_ml_kmeans_matches_scikit_learn_after_aligning_clusters(blobs):
    import dask.array as da
    from distributed import Client, LocalCluster

    X, y = blobs
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster):
        spread = Clusterer("kmeans", 4, random_state=0).fit(da.from_array(X, chunks=(200, -1)))
    local = Clusterer("kmeans", 4, random_state=0).fit(X)
    assert spread.fit_rows_ == len(X) and spread.clusters_.tolist() == [0, 1, 2, 3]
    assert adjusted_rand_score(local.predict(X), spread.predict(X)) == pytest.approx(1.0)
    assert spread.temperature_ == pytest.approx(local.temperature_, rel=1e-3)
    np.testing.assert_allclose(spread.predict_proba(X).sum(axis=1), 1.0)
