"""Unit tests on the core library: registry, scoring, partition, leaderboard, storage."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from clusterflow.algorithms import NOISE, REGISTRY, Clusterer, algorithms_for
from clusterflow.errors import RunNotFoundError
from clusterflow.leaderboard import build_leaderboard, top_model_id
from clusterflow.partition import default_k_values, partition_rows
from clusterflow.scoring import score_labels
from clusterflow.run_folder import RunFolder
from clusterflow.training import CandidateSpec, candidate_specs, fit_and_score


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=900, centers=4, n_features=5, cluster_std=0.8, random_state=2)
    return X, y


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_algorithm_predicts_new_points_with_probabilities(name, blobs):
    X, y = blobs
    clusterer = Clusterer(name, 4 if REGISTRY[name].takes_k else None, random_state=0).fit(X[:700])
    labels = clusterer.predict(X[700:])
    proba = clusterer.predict_proba(X[700:])
    assert proba.shape == (200, len(clusterer.clusters_))
    assert ((proba >= 0) & (proba <= 1 + 1e-9)).all()
    clustered = labels != NOISE
    assert adjusted_rand_score(y[700:][clustered], labels[clustered]) > 0.95
    assert (proba[clustered].argmax(axis=1) == np.searchsorted(clusterer.clusters_, labels[clustered])).mean() > 0.95


def test_algorithm_without_predict_uses_the_inductive_path(blobs):
    X, _ = blobs
    assert REGISTRY["ward"].predict is None
    clusterer = Clusterer("ward", 4).fit(X)
    assert hasattr(clusterer, "classifier_")
    np.testing.assert_array_equal(clusterer.predict(X), clusterer.estimator_.labels_)


def test_large_fits_use_a_seeded_sample_and_predict_the_rest():
    X, y = make_blobs(n_samples=25_000, centers=3, n_features=4, random_state=0)
    clusterer = Clusterer("hdbscan", random_state=1).fit(X)
    assert clusterer.fit_rows_ == REGISTRY["hdbscan"].max_fit_rows
    assert len(clusterer.labels_) == len(clusterer.fit_sample_) == clusterer.fit_rows_
    assert adjusted_rand_score(y[clusterer.fit_sample_], clusterer.labels_) > 0.95
    assert adjusted_rand_score(y, clusterer.predict(X)) > 0.95


def test_quick_mode_is_kmeans_and_hdbscan():
    assert [a.name for a in algorithms_for("quick")] == ["kmeans", "hdbscan"]
    specs = candidate_specs(algorithms_for("comprehensive"), [2, 3], seed=0)
    assert [s.model_id for s in specs] == ["kmeans-k2", "kmeans-k3", "gmm-k2", "gmm-k3", "ward-k2", "ward-k3",
                                           "hdbscan"]


def test_noise_rows_score_zero_in_the_silhouette(blobs):
    X, y = blobs
    clean = score_labels(X, y, sample_size=10_000, seed=0)
    noisy_labels = y.copy()
    noisy_labels[:90] = NOISE
    noisy = score_labels(X, noisy_labels, sample_size=10_000, seed=0)
    clustered_only = score_labels(X[90:], y[90:], sample_size=10_000, seed=0)
    assert noisy["noise_fraction"] == pytest.approx(0.1)
    assert noisy["silhouette"] == pytest.approx(clustered_only["silhouette"] * 0.9)
    assert clean["noise_fraction"] == 0 and clean["cluster_sizes"] == {c: 225 for c in range(4)}


def test_one_cluster_has_undefined_scores(blobs):
    X, _ = blobs
    scores = score_labels(X, np.zeros(len(X), dtype=int), sample_size=1000, seed=0)
    assert np.isnan(scores["silhouette"]) and "fewer than 2 clusters" in scores["note"]


def test_partition_is_seeded_disjoint_and_capped():
    a, b = partition_rows(1000, 0.2, 50_000, seed=3), partition_rows(1000, 0.2, 50_000, seed=3)
    np.testing.assert_array_equal(a.validation, b.validation)
    assert len(a.validation) == 200 and not set(a.train) & set(a.validation)
    assert sorted(np.concatenate([a.train, a.validation]).tolist()) == list(range(1000))
    assert len(partition_rows(1_000_000, 0.2, 50_000, seed=0).validation) == 50_000
    assert not np.array_equal(partition_rows(1000, 0.2, 50_000, seed=4).validation, a.validation)


def test_default_k_values_grow_with_rows():
    assert default_k_values(30) == [2, 3]
    assert default_k_values(100_000) == [2, 3, 4, 5, 6, 8, 10, 12]


def test_failed_candidates_rank_last_with_their_error(blobs):
    X, _ = blobs
    ok = fit_and_score(CandidateSpec("kmeans", 4), X[:700], X[700:], silhouette_sample=1000)
    failed = fit_and_score(CandidateSpec("gmm", 800), X[:700], X[700:], silhouette_sample=1000)
    board = build_leaderboard([failed, ok])
    assert board["model_id"].tolist() == ["kmeans-k4", "gmm-k800"]
    assert board.loc[1, "status"] == "failed" and "n_components = 800" in board.loc[1, "error"]
    assert top_model_id(board) == "kmeans-k4"


def test_run_folder_without_manifest_is_not_a_run(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "leaderboard.csv").write_text("rank\n1\n")
    with pytest.raises(RunNotFoundError):
        folder.manifest()
