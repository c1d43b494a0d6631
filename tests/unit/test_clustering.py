"""``clusterflow.Clustering``: the whole pipeline on a DataFrame in this process, and the run folder it saves."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils._param_validation import InvalidParameterError

import clusterflow
from clusterflow import rerun
from clusterflow.errors import InputValidationError
from clusterflow.leaderboard import COLUMNS
from clusterflow.samples import customers
from clusterflow.run_folder import RunFolder
from clusterflow.training import fit_and_score

SETTINGS = {"k": [3, 4, 5], "algorithms": ["kmeans", "gmm"], "seed": 3}


@pytest.fixture(scope="module")
def planted():
    table = customers(400, seed=3)
    return table.drop(columns="segment"), table["segment"]


@pytest.fixture(scope="module")
def fitted(planted):
    table, _ = planted
    return clusterflow.Clustering(**SETTINGS).fit(table)


def test_fit_ranks_every_candidate_and_keeps_the_best(fitted, planted):
    table, segment = planted
    board = fitted.leaderboard_
    assert board.columns.tolist() == COLUMNS
    assert sorted(board["model_id"]) == sorted(f"{a}-k{k}" for a in SETTINGS["algorithms"] for k in SETTINGS["k"])
    assert set(fitted.models_) == set(board["model_id"]) and fitted.best_model_ is fitted.models_[fitted.best_model_id_]
    assert fitted.best_model_id_ == board.iloc[0]["model_id"]
    assert fitted.roles_["customer_id"] == "id"
    assert adjusted_rand_score(segment, fitted.labels_) >= 0.9


def test_predict_on_the_fitted_rows_gives_the_labels(fitted, planted):
    table, _ = planted
    np.testing.assert_array_equal(fitted.predict(table), fitted.labels_)
    proba = fitted.predict_proba(table.head(20))
    assert proba.shape == (20, fitted.leaderboard_.iloc[0]["clusters"])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assigned = fitted.assign(table.head(5))
    assert assigned["customer_id"].tolist() == table["customer_id"].head(5).tolist()
    np.testing.assert_array_equal(assigned["cluster"], fitted.labels_[:5])


def test_fit_predict_returns_the_labels(planted):
    table, _ = planted
    clustering = clusterflow.Clustering(k=[4], algorithms=["kmeans"], seed=3)
    labels = clustering.fit_predict(table)
    np.testing.assert_array_equal(labels, clustering.labels_)


def test_a_numeric_array_is_a_table_of_numbers():
    X, y = make_blobs(n_samples=200, centers=3, n_features=4, random_state=0)
    clustering = clusterflow.Clustering(k=[2, 3, 4], algorithms=["kmeans"]).fit(X)
    assert clustering.best_model_id_ == "kmeans-k3" and clustering.n_features_in_ == 4
    assert set(clustering.roles_.values()) == {"numeric"}
    assert adjusted_rand_score(y, clustering.predict(X)) == pytest.approx(1.0)


def test_parameters_are_checked_before_any_work(planted):
    table, _ = planted
    with pytest.raises(InvalidParameterError, match="mode"):
        clusterflow.Clustering(mode="fastest").fit(table)
    with pytest.raises(InvalidParameterError, match="validation_fraction"):
        clusterflow.Clustering(validation_fraction=1.5).fit(table)
    with pytest.raises(InvalidParameterError, match="text_backend"):
        clusterflow.Clustering(text_backend="gpu").fit(table)
    with pytest.raises(InputValidationError, match=r"2\.\.100"):
        clusterflow.Clustering(k=[1, 3]).fit(table)
    with pytest.raises(InputValidationError, match="customer_id"):
        clusterflow.Clustering(k=[3], roles={"customer_id": "numeric"}).fit(table)


def test_saved_run_is_a_standard_run_folder(fitted, planted, tmp_path):
    table, _ = planted
    uri = fitted.save(str(tmp_path / "run"))
    folder = RunFolder(uri)
    manifest = folder.manifest()
    assert manifest.top_model == fitted.best_model_id_ and folder.exists("report.html")
    # CSV: '' reads as NaN
    published = pd.read_csv(folder.url("leaderboard.csv")).fillna({"error": "", "note": "", "algorithm_pick": ""})
    pd.testing.assert_frame_equal(published.drop(columns=["fit_seconds", "score_seconds"]),
                                  fitted.leaderboard_.drop(columns=["fit_seconds", "score_seconds"]),
                                  check_dtype=False)
    assignments = pd.read_parquet(folder.url("assignments.parquet"))
    np.testing.assert_array_equal(assignments["cluster"], fitted.labels_)
    np.testing.assert_array_equal(clusterflow.load_model(uri).predict(table), fitted.labels_)

    cached = rerun.load_cached_run(uri)  # a rerun adds a cluster count from the cached features
    results = [fit_and_score(s, cached.features.X_train, cached.features.X_validation, silhouette_sample=1000)
               for s in rerun.rerun_specs(cached, [6], "kmeans-k4")]
    with folder.locked("rerun") as lock:
        rerun.write_rerun(cached, results, lock)
    assert "kmeans-k6" in folder.manifest().models


def test_report_is_written_where_asked(fitted, tmp_path):
    path = fitted.report(str(tmp_path / "customers.html"))
    html = (tmp_path / "customers.html").read_text()
    assert path.endswith("customers.html") and fitted.best_model_id_ in html and "<html" in html
