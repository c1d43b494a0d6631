"""Model selection on small tables whose answer is known: the default rule, its columns, metric=silhouette."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from clusterflow import Clustering
from clusterflow.leaderboard import (build_leaderboard, extend_leaderboard, merged_scoring_labels, scoring_labels,
                                     top_model_id)
from clusterflow.scoring import mean_agreement, reference_silhouette, without_tiny_clusters
from clusterflow.training import CandidateSpec, fit_and_score, scoring_rows


@pytest.fixture(scope="module")
def blob_results():
    X, _ = make_blobs(n_samples=600, centers=3, cluster_std=0.6, random_state=3)
    specs = [CandidateSpec(algorithm, k) for algorithm in ("kmeans", "gmm") for k in (2, 3, 4, 6, 8)]
    return [fit_and_score(spec, X[:480], X[480:], silhouette_sample=1000) for spec in specs]


def test_three_separated_blobs_choose_three_clusters(blob_results):
    board = build_leaderboard(blob_results)
    assert board.iloc[0]["clusters"] == 3
    assert top_model_id(board) == board.iloc[0]["model_id"]


def test_each_algorithm_picks_its_k_and_the_most_agreed_pick_ranks_first(blob_results):
    board = build_leaderboard(blob_results)
    picks = board[board["algorithm_pick"] != ""]
    gmm, kmeans = (board[board["algorithm"] == name] for name in ("gmm", "kmeans"))
    assert picks["model_id"].tolist()[:2] == board["model_id"].tolist()[:2]  # the picks rank first
    assert picks.set_index("algorithm").loc["gmm", "model_id"] == gmm.loc[gmm["bic"].idxmin(), "model_id"]
    stable_kmeans = kmeans[kmeans["stability"] >= 0.7]
    assert (picks.set_index("algorithm").loc["kmeans", "model_id"]
            == stable_kmeans.loc[stable_kmeans["silhouette_excess"].idxmax(), "model_id"])
    assert picks["agreement"].is_monotonic_decreasing
    rest = board.iloc[len(picks):]
    stable_rest = rest[rest["stability"] >= 0.7]
    assert stable_rest["silhouette_excess"].is_monotonic_decreasing and stable_rest.index.max() < len(picks) + len(
        stable_rest)
    assert kmeans["bic"].isna().all() and gmm["bic"].notna().all()


def test_scoring_rows_from_a_pool_are_those_of_the_pooled_sample():
    X = np.arange(200.0).reshape(100, 2)
    pool = np.sort(np.random.default_rng(5).choice(100, 40, replace=False))
    validation = -np.ones((10, 2))
    (pooled, keys), (sampled, sample_keys) = (scoring_rows(X, validation, 30, seed=3, sample=pool),
                                              scoring_rows(X[pool], validation, 30, seed=3, sample=pool))
    np.testing.assert_array_equal(pooled, sampled)
    np.testing.assert_array_equal(keys[:10], -1 - np.arange(10))  # validation rows, then train positions
    np.testing.assert_array_equal(keys, sample_keys)
    np.testing.assert_array_equal(pooled[10:], X[keys[10:]])


def test_scoring_rows_are_keyed_by_train_position_whichever_matrix_a_candidate_got():
    X, _ = make_blobs(n_samples=400, centers=3, random_state=4)
    train, validation = X[:300], X[300:]
    pool = np.sort(np.random.default_rng(6).choice(300, 150, replace=False))
    spread = fit_and_score(CandidateSpec("kmeans", 3), train, validation, silhouette_sample=200, train_sample=pool)
    sampled = fit_and_score(CandidateSpec("gmm", 3), train[pool], validation, silhouette_sample=200,
                            train_rows=300, train_sample=pool)
    np.testing.assert_array_equal(spread.scoring_keys, sampled.scoring_keys)
    assert np.isin(spread.scoring_keys[spread.scoring_keys >= 0], pool).all()
    assert len(scoring_labels([spread, sampled])) == 200


def test_agreement_is_the_mean_adjusted_rand_index_with_the_other_models():
    same, relabelled = np.array([0, 0, 1, 1, 2, 2]), np.array([5, 5, 3, 3, 4, 4])
    unrelated = np.array([0, 1, 0, 1, 0, 1])
    agreements = mean_agreement({"a": same, "b": relabelled, "c": unrelated})
    assert agreements["a"] == pytest.approx((1.0 + adjusted_rand_score(same, unrelated)) / 2)
    assert agreements["c"] < agreements["a"] == agreements["b"]
    assert np.isnan(mean_agreement({"alone": same})["alone"])


def test_a_rerun_measures_every_models_agreement_again(blob_results):
    first, added = blob_results[:3] + blob_results[5:8], blob_results[3:5] + blob_results[8:]
    board = build_leaderboard(first)
    extended = extend_leaderboard(board, added, labels=merged_scoring_labels(scoring_labels(first), added))
    assert extended.sort_values("model_id").reset_index(drop=True).equals(
        build_leaderboard(blob_results).sort_values("model_id").reset_index(drop=True))
    # A run published before the labels were kept: no agreement, so the picks first in step 1's order.
    without = extend_leaderboard(board, added, labels=merged_scoring_labels(None, added))
    assert without["agreement"].isna().all()
    picks = without[without["algorithm_pick"] != ""]
    assert picks.index.tolist() == list(range(len(picks))) and len(picks) == 2
    gmm = without[without["algorithm"] == "gmm"]
    assert picks.set_index("algorithm").loc["gmm", "model_id"] == gmm.loc[gmm["bic"].idxmin(), "model_id"]
    assert top_model_id(without) == picks.iloc[0]["model_id"]


def test_earlier_scoring_labels_are_compared_on_the_rows_both_have(blob_results):
    # A rerun on a cluster with another memory budget scores on other train rows: the shared ones count.
    earlier = scoring_labels(blob_results[:3]).iloc[:-100]
    merged = merged_scoring_labels(earlier, blob_results[3:])
    assert merged.index.equals(earlier.index) and list(merged) == [r.spec.model_id for r in blob_results]
    assert merged_scoring_labels(earlier.set_axis(earlier.index + 10_000), blob_results[3:]) is None
    # Labels published before the rows' keys were kept: the same rows when there are as many.
    unkeyed = scoring_labels(blob_results[:3]).reset_index(drop=True)
    assert merged_scoring_labels(unkeyed, blob_results[3:]).equals(scoring_labels(blob_results))
    assert merged_scoring_labels(unkeyed.iloc[:-1], blob_results[3:]) is None


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
    assert f"{top['agreement']:.3f}" in why
