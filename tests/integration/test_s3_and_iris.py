"""Runs against a real S3 API (moto's server on 127.0.0.1) and on scikit-learn's iris data."""
from __future__ import annotations

import pandas as pd
import pytest
import s3fs
from sklearn.datasets import load_iris
from sklearn.metrics import adjusted_rand_score

import clusterflow
from clusterflow.run_folder import RunFolder
from flows.cluster import cluster
from flows.predict import predict

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_run_publish_and_predict_all_through_s3(s3_bucket, dask_address, customers_csv):
    local_csv, segments = customers_csv
    fs = s3fs.S3FileSystem()
    fs.put(local_csv, f"{s3_bucket}/incoming/customers.csv")
    data = f"s3://{s3_bucket}/incoming/customers.csv"
    run_uri = f"s3://{s3_bucket}/runs/first"

    assert cluster(data=data, out=run_uri, dask_address=dask_address, k=[3, 4, 5]) == run_uri

    manifest = RunFolder(run_uri).manifest()
    assert manifest.input.uri == data
    assert fs.exists(f"{s3_bucket}/runs/first/models/{manifest.top_model}/model.joblib")
    out = f"s3://{s3_bucket}/scored/customers.parquet"
    predict(model=run_uri, data=data, out=out)
    scored = pd.read_parquet(out)
    published = pd.read_parquet(f"{run_uri}/assignments.parquet")
    pd.testing.assert_frame_equal(scored, published)
    assert adjusted_rand_score(segments.loc[scored["customer_id"]], scored["cluster"]) >= 0.9
    assert isinstance(clusterflow.load_model(run_uri), clusterflow.ClusterModel)


def test_iris_gaussian_mixture_recovers_the_species(tmp_path, dask_address):
    iris = load_iris(as_frame=True)
    data = tmp_path / "iris.parquet"
    iris.data.to_parquet(data)
    run_uri = cluster(data=str(data), out=str(tmp_path / "run"), k=[3], dask_address=dask_address)
    board = pd.read_csv(f"{run_uri}/leaderboard.csv").set_index("model_id")
    assert board.loc["gmm-k3", "status"] == "ok"
    gmm = clusterflow.load_model(f"{run_uri}/models/gmm-k3")
    assigned = gmm.assign(iris.data)
    assert assigned.columns.tolist() == ["row_id", "cluster", "p_0", "p_1", "p_2"]
    assert adjusted_rand_score(iris.target, assigned["cluster"]) >= 0.85
