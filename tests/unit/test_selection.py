"""Model selection on small tables whose answer is known: the default rule, its columns, metric=silhouette."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from clusterflow import Clustering
from clusterflow.leaderboard import build_leaderboard, top_model_id
from clusterflow.scoring import reference_silhouette, without_tiny_clusters
from clusterflow.training import CandidateSpec, fit_and_score


@pytest.fixture(scope="module")
def blob_results():
    X, _ = make_blobs(n_samples=600, centers=3, cluster_std=0.6, random_state=3)
    specs = [CandidateSpec(algorithm, k) for algorithm in ("kmeans", "gmm") for k in (2, 3, 4, 6, 8)]
    return [fit_and_score(spec, X[:480], X[480:], silhouette_sample=1000) for spec in specs]


def test_three_separated_blobs_choose_three_clusters(blob_results):
    board = build_leaderboard(blob_results)
    assert board.iloc[0]["clusters"] == 3
    assert top_model_id(board) == board.iloc[0]["model_id"]
    stable = board[board["stability"] >= 0.7]
    assert stable["silhouette_excess"].is_monotonic_decreasing and stable.index.max() < len(stable)


def test_stability_is_high_for_the_true_clusters_and_lower_for_split_ones(blob_results):
    stability = {r.spec.model_id: r.scores["stability"] for r in blob_results}
    assert stability["kmeans-k3"] > 0.95
    assert stability["gmm-k8"] < stability["kmeans-k3"]


def test_metric_silhouette_ranks_exactly_by_validation_silhouette(blob_results):
    board = build_leaderboard(blob_results, metric="silhouette")
    expected = sorted(blob_results, key=lambda r: (-r.scores["silhouette"], r.spec.model_id))
    assert board["model_id"].tolist() == [r.spec.model_id for r in expected]
    assert top_model_id(board, "silhouette") == expected[0].spec.model_id


def test_reference_silhouette_is_that_of_structureless_data():
    rng = np.random.default_rng(0)
    elongated = rng.normal(size=(1000, 2)) * [5.0, 1.0]
    # Halving one elongated Gaussian cloud already scores about 0.4-0.5: the bar a clustering must clear.
    assert 0.3 < reference_silhouette(elongated, 2, seed=0) < 0.6
    assert reference_silhouette(elongated, 8, seed=0) < reference_silhouette(elongated, 2, seed=0)


def test_tiny_clusters_count_as_noise():
    labels = np.array([0] * 95 + [1] * 3 + [2] * 2)
    assert without_tiny_clusters(labels).tolist() == [0] * 95 + [-1] * 5


def test_a_lattice_of_one_hot_levels_does_not_outrank_the_real_groups():
    rng = np.random.default_rng(1)
    n = 400
    groups = rng.integers(2, size=n)
    table = pd.DataFrame({
        "x": groups * 6.0 + rng.normal(size=n), "y": groups * 6.0 + rng.normal(size=n),
        # Independent of the groups: their one-hot levels form a lattice of 3 x 3 cells.
        "colour": rng.choice(["red", "green", "blue"], n), "size": rng.choice(["S", "M", "L"], n),
    })
    clustering = Clustering(algorithms=["kmeans", "ward"], k=[2, 3, 4, 6, 9], seed=0).fit(table)
    assert clustering.leaderboard_.iloc[0]["clusters"] == 2
    assert adjusted_rand_score(groups, clustering.labels_) > 0.95


def test_why_the_top_model_names_its_numbers(blob_results):
    from clusterflow.leaderboard import why_top_model

    board = build_leaderboard(blob_results)
    why = why_top_model(board)
    top = board.iloc[0]
    assert why.startswith(f"{top['model_id']} ranks first")
    assert f"{top['silhouette_excess']:.3f}" in why and f"{top['stability']:.2f}" in why
