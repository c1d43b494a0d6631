"""The cluster and predict flows end to end, under the Prefect harness on a real Dask cluster."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.metrics import adjusted_rand_score

import clusterflow
from clusterflow import rerun as rerun_core
from clusterflow.errors import InputValidationError, RunExistsError
from clusterflow.leaderboard import COLUMNS, rank
from clusterflow.run_folder import RunFolder
from clusterflow.training import fit_and_score
from flows.cluster import cluster
from flows.predict import predict

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def customers_run(tmp_path_factory, dask_address):
    from clusterflow.samples import customers

    folder = tmp_path_factory.mktemp("customers")
    table = customers(1200, seed=11)
    data = folder / "customers.csv"
    table.drop(columns="segment").to_csv(data, index=False)
    run_uri = cluster(data=str(data), out=str(folder / "run"), dask_address=dask_address)
    return run_uri, table


def test_run_folder_has_the_contracted_outputs(customers_run):
    run_uri, table = customers_run
    folder = RunFolder(run_uri)
    manifest = folder.manifest()
    board = pd.read_csv(f"{run_uri}/leaderboard.csv")
    assert list(board.columns[: len(COLUMNS)]) == COLUMNS
    assert board["rank"].tolist() == list(range(1, len(board) + 1))
    assert board["model_id"].tolist() == rank(board.drop(columns="rank"))["model_id"].tolist()  # metric auto
    assert set(board["algorithm"]) == {"kmeans", "gmm", "ward", "hdbscan"}
    assert manifest.top_model == board.iloc[0]["model_id"]
    assert manifest.id_column == "customer_id"
    for model_id in board["model_id"]:
        assert folder.exists(f"models/{model_id}/model.joblib")
    assignments = pd.read_parquet(f"{run_uri}/assignments.parquet")
    assert assignments["customer_id"].tolist() == table["customer_id"].tolist()
    p_columns = [c for c in assignments.columns if c.startswith("p_")]
    assert len(p_columns) == board.iloc[0]["clusters"]
    probabilities = assignments[p_columns].to_numpy()
    assert ((probabilities >= 0) & (probabilities <= 1 + 1e-9)).all()
    totals = probabilities.sum(axis=1)
    if board.iloc[0]["algorithm"] == "hdbscan":  # the remainder is the probability of noise
        assert (totals <= 1 + 1e-6).all()
    else:
        np.testing.assert_allclose(totals, 1.0, atol=1e-6)


def test_top_model_recovers_planted_segments(customers_run):
    run_uri, table = customers_run
    assignments = pd.read_parquet(f"{run_uri}/assignments.parquet")
    assert adjusted_rand_score(table["segment"], assignments["cluster"]) >= 0.9


def test_published_model_predicts_new_rows_like_the_run(customers_run, tmp_path):
    run_uri, table = customers_run
    model = clusterflow.load_model(run_uri)
    new = table.drop(columns="segment").head(50).copy()
    new.loc[new.index[:3], "channel"] = "carrier-pigeon"  # unseen level
    new.loc[new.index[3:6], "age"] = np.nan
    assigned = model.assign(new)
    assert assigned["customer_id"].tolist() == new["customer_id"].tolist()
    published = pd.read_parquet(f"{run_uri}/assignments.parquet").head(50)
    same = assigned["cluster"].to_numpy()[6:] == published["cluster"].to_numpy()[6:]
    assert same.all()


def test_predict_flow_missing_column_is_a_clear_error(customers_run, tmp_path):
    run_uri, table = customers_run
    data = tmp_path / "new.csv"
    table.drop(columns=["segment", "income_k"]).to_csv(data, index=False)
    with pytest.raises(InputValidationError, match="income_k"):
        predict(model=run_uri, data=str(data), out=str(tmp_path / "out.parquet"))


def test_partitioned_predict_equals_in_memory(customers_run, tmp_path, dask_address):
    run_uri, table = customers_run
    data = tmp_path / "new.csv"
    table.drop(columns="segment").to_csv(data, index=False)
    predict(model=run_uri, data=str(data), out=str(tmp_path / "whole.parquet"))
    predict(model=run_uri, data=str(data), out=str(tmp_path / "parts"), blocksize="8KB", dask_address=dask_address)
    whole = pd.read_parquet(tmp_path / "whole.parquet")
    parts = pd.read_parquet(tmp_path / "parts").sort_values("customer_id", kind="stable")
    assert len(list((tmp_path / "parts").glob("*.parquet"))) > 1
    pd.testing.assert_frame_equal(whole.sort_values("customer_id").reset_index(drop=True),
                                  parts.reset_index(drop=True), check_dtype=False)


def test_published_run_is_never_overwritten(customers_run):
    run_uri, _ = customers_run
    manifest = Path(run_uri, "manifest.json")
    before = manifest.read_bytes()
    with pytest.raises(RunExistsError):
        cluster(data=json.loads(before)["input"]["uri"], out=run_uri)
    assert manifest.read_bytes() == before


class _FailsForLargeK(ClusterMixin, BaseEstimator):
    """A registered algorithm (a scikit-learn estimator, as every algorithm is) that cannot fit more than three
    clusters."""

    def __init__(self, k):
        self.k = k

    def fit(self, X):
        if self.k > 3:
            raise ValueError(f"cannot fit {self.k} clusters")
        from sklearn.cluster import KMeans

        self.labels_ = KMeans(self.k, n_init=1, random_state=0).fit_predict(X)
        return self


@pytest.fixture(scope="module")
def in_process_dask():
    """A Dask cluster of worker threads, so an algorithm registered by a test is visible to it."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address="127.0.0.1:0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def fragile_algorithm():
    from clusterflow.algorithms import REGISTRY, Algorithm

    REGISTRY["fragile"] = Algorithm("fragile", True, lambda k, seed, n: _FailsForLargeK(k), "test algorithm")
    yield "fragile"
    del REGISTRY["fragile"]


def test_failed_candidates_are_leaderboard_rows(customers_csv, tmp_path, in_process_dask, fragile_algorithm):
    data, _ = customers_csv
    run_uri = cluster(data=data, out=str(tmp_path / "run"), k=[3, 4], algorithms=["kmeans", fragile_algorithm],
                      dask_address=in_process_dask)
    board = pd.read_csv(f"{run_uri}/leaderboard.csv").set_index("model_id")
    assert board.loc["fragile-k4", "status"] == "failed"
    assert board.loc["fragile-k4", "error"] == "ValueError: cannot fit 4 clusters"
    assert board.loc["fragile-k4", "rank"] == len(board)
    assert (board.drop(index="fragile-k4")["status"] == "ok").all()
    assert RunFolder(run_uri).manifest().failed_models == {"fragile-k4": "ValueError: cannot fit 4 clusters"}


def test_run_fails_only_when_every_candidate_fails_and_publishes_nothing(customers_csv, tmp_path, in_process_dask,
                                                                         fragile_algorithm):
    from clusterflow.errors import AllCandidatesFailedError

    data, _ = customers_csv
    with pytest.raises(AllCandidatesFailedError, match="fragile-k5: ValueError: cannot fit 5 clusters"):
        cluster(data=data, out=str(tmp_path / "run"), k=[4, 5], algorithms=[fragile_algorithm],
                dask_address=in_process_dask)
    assert not RunFolder(str(tmp_path / "run")).is_published()


def test_cli_run_prints_the_leaderboard_and_rejects_bad_input(customers_csv, tmp_path, dask_address, capsys):
    from flows.cli import main

    data, _ = customers_csv
    assert main(["run", data, "--out", str(tmp_path / "run"), "--mode", "quick", "--k", "3", "4",
                 "--dask-address", dask_address]) == 0
    printed = capsys.readouterr().out
    assert "kmeans-k4" in printed and f"Run folder: {tmp_path / 'run'}" in printed

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["run", str(bad), "--dask-address", dask_address]) == 2
    assert "fewer than 10 rows" in capsys.readouterr().err


def test_train_matrix_over_the_broadcast_budget_is_spread_over_the_workers(customers_csv, tmp_path, dask_address):
    data, segments = customers_csv
    run_uri = cluster(data=data, out=str(tmp_path / "run"), k=[4], algorithms=["kmeans", "gmm"],
                      dask_address=dask_address, max_broadcast_bytes=8_000)
    board = pd.read_csv(f"{run_uri}/leaderboard.csv").set_index("model_id")
    train_rows = RunFolder(run_uri).manifest().partition.train_rows
    assert board.loc["kmeans-k4", "fit_rows"] == train_rows  # dask-ml k-means on the whole spread matrix
    assert board.loc["gmm-k4", "fit_rows"] < train_rows and "sample" in board.loc["gmm-k4", "note"]
    assert board["agreement"].notna().all()  # both scored on the same rows: their labels compare
    assigned = clusterflow.load_model(f"{run_uri}/models/kmeans-k4").assign(pd.read_csv(data))
    assert adjusted_rand_score(segments.loc[assigned["customer_id"]], assigned["cluster"]) >= 0.9
    # A rerun on workers with room for the whole train matrix scores on every train row, not on the
    # spread run's sample: the models' labels are compared on the rows both have.
    cached = rerun_core.load_cached_run(run_uri)
    results = [fit_and_score(spec, cached.features.X_train, cached.features.X_validation, silhouette_sample=10_000)
               for spec in rerun_core.rerun_specs(cached, [3])]
    assert len(results[0].scoring_keys) > len(cached.scoring_labels)
    with RunFolder(run_uri).locked("rerun") as lock:
        rerun_core.write_rerun(cached, results, lock)
    board = pd.read_csv(f"{run_uri}/leaderboard.csv").set_index("model_id")
    assert board.loc[["kmeans-k3", "gmm-k3", "kmeans-k4", "gmm-k4"], "agreement"].notna().all()
