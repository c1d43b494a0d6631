"""The estimator and the `cluster` flow are one pipeline: same data and seed, same leaderboard; a saved
estimator run works with the flows like any other run."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clusterflow
from clusterflow.run_folder import RunFolder
from clusterflow.storage import read_table
from flows.cli import main
from flows.cluster import cluster
from flows.predict import predict
from flows.rerun import rerun

pytestmark = pytest.mark.usefixtures("prefect_harness")

SETTINGS = {"k": [3, 4, 5], "algorithms": ["kmeans", "gmm", "hdbscan"], "seed": 5}
COMPARED = ["rank", "model_id", "clusters", "silhouette", "calinski_harabasz", "davies_bouldin", "noise_fraction",
            "fit_rows", "cluster_sizes", "status", "modalities"]


def test_the_estimator_and_the_flow_rank_the_same_candidates_alike(customers_csv, tmp_path, dask_address):
    data, _ = customers_csv
    run_uri = cluster(data=data, out=str(tmp_path / "flow"), dask_address=dask_address, **SETTINGS)
    estimator = clusterflow.Clustering(**SETTINGS).fit(read_table(data))

    flow_board = pd.read_csv(f"{run_uri}/leaderboard.csv")
    pd.testing.assert_frame_equal(estimator.leaderboard_[COMPARED], flow_board[COMPARED], check_dtype=False,
                                  rtol=1e-6)
    assignments = pd.read_parquet(f"{run_uri}/assignments.parquet")
    np.testing.assert_array_equal(estimator.labels_, assignments["cluster"])

    from distributed import Client

    with Client(dask_address) as client:  # the candidates fitted on the workers instead of in threads
        on_dask = clusterflow.Clustering(**SETTINGS, client=client).fit(read_table(data))
    pd.testing.assert_frame_equal(on_dask.leaderboard_[COMPARED], flow_board[COMPARED], check_dtype=False, rtol=1e-6)

    saved = estimator.save(str(tmp_path / "saved"))
    predict(model=saved, data=data, out=str(tmp_path / "scored.parquet"))
    np.testing.assert_array_equal(pd.read_parquet(tmp_path / "scored.parquet")["cluster"], estimator.labels_)
    rerun(run=saved, k=[6], model="kmeans-k3", dask_address=dask_address)
    assert "kmeans-k6" in RunFolder(saved).manifest().models
    assert main(["report", saved, "--model", "gmm-k3"]) == 0
    assert RunFolder(saved).exists("reports/gmm-k3.html")
