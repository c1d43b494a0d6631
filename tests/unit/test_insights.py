"""Insights on small tables whose answers are known: hand-computed statistics and planted signals."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clusterflow.algorithms import Clusterer
from clusterflow.blueprint import make_featurizer
from clusterflow.insights import (ImageSource, compute_insights, describe_clusters, feature_associations,
                                  feature_impact, insight_files, occlusion_map)
from clusterflow.insights.profiles import (categorical_profile, coordinates, datetime_profile, geo_profile,
                                           numeric_profile, text_profile)
from clusterflow.model import ClusterModel
from clusterflow.roles import RoleDecision
from tests.planted import image_model, write_planted_images


def test_numeric_profile_matches_hand_computed_values():
    values = pd.Series([1, 2, 3, 4, np.nan, 10, 20, 30, 40, 50])
    labels = np.array([0] * 5 + [1] * 5)
    stats = numeric_profile(values, labels)["stats"]
    assert stats["0"] == {"rows": 5, "mean": 2.5, "median": 2.5, "q1": 1.75, "q3": 3.25, "min": 1.0, "max": 4.0,
                          "missing": pytest.approx(0.2)}
    assert stats["1"]["mean"] == 30.0 and stats["1"]["q1"] == 20.0 and stats["1"]["missing"] == 0.0
    overall = stats["all"]  # 1 2 3 4 10 20 30 40 50: positions 2 and 6 are the quartiles
    assert overall["mean"] == pytest.approx(160 / 9)
    assert (overall["median"], overall["q1"], overall["q3"]) == (10.0, 3.0, 30.0)
    assert overall["missing"] == pytest.approx(0.1)


def test_categorical_profile_shares_other_and_missing():
    rare = [f"r{i}" for i in range(12)]  # 14 levels in all: only the 10 most frequent are listed
    values = pd.Series(["a"] * 6 + ["b"] * 4 + rare + [None, "n/a"])
    labels = np.array([0] * 10 + [1] * 14)
    profile = categorical_profile(values, labels)
    assert profile["levels"][:2] == ["a", "b"] and len(profile["levels"]) == 10
    cluster0, cluster1, overall = profile["stats"]["0"], profile["stats"]["1"], profile["stats"]["all"]
    assert cluster0["levels"]["a"] == 0.6 and cluster0["levels"]["b"] == 0.4
    assert cluster0["other"] == 0.0 and cluster0["missing"] == 0.0
    assert cluster1["levels"]["a"] == 0.0
    assert cluster1["other"] == pytest.approx(4 / 14)  # 12 rare levels, 8 of them listed
    assert cluster1["missing"] == pytest.approx(2 / 14)
    assert overall["levels"]["a"] == pytest.approx(6 / 24)
    shares = sum(cluster1["levels"].values()) + cluster1["other"] + cluster1["missing"]
    assert shares == pytest.approx(1.0)


def test_text_profile_class_based_tfidf_by_hand():
    texts = pd.Series(["apple apple banana", "apple cherry", "engine wheel", "engine cherry", None])
    labels = np.array([0, 0, 1, 1, 1])
    distances = np.array([0.5, 0.1, 0.2, 0.3, 0.0])
    stats = text_profile(texts, labels, distances)["stats"]
    # min_df=2 keeps apple, cherry, engine. Cluster 0: apple 3, cherry 1 (4 words); cluster 1: engine 2, cherry 1
    # (3 words); A = 3.5 words per cluster on average; f(apple) = 3, f(cherry) = 2.
    terms = {t["term"]: t["score"] for t in stats["0"]["terms"]}
    assert terms["apple"] == pytest.approx(3 / 4 * math.log(1 + 3.5 / 3))
    assert terms["cherry"] == pytest.approx(1 / 4 * math.log(1 + 3.5 / 2))
    assert stats["0"]["terms"][0]["term"] == "apple" and "engine" not in terms
    assert stats["1"]["terms"][0]["term"] == "engine"
    assert [e["text"] for e in stats["0"]["examples"]] == ["apple cherry", "apple apple banana"]
    assert stats["1"]["examples"][0]["text"] == "engine wheel"  # the missing text is never an example
    assert stats["1"]["missing"] == pytest.approx(1 / 3)


def test_geo_profile_from_wkt_and_pairs():
    frame = pd.DataFrame({"where": ["POINT (10 50)", "POINT (12 50)", "POINT (-70 -30)", None],
                          "lat": [50, 50, -30, None], "lon": [10, 12, -70, None]})
    from_wkt = coordinates(frame, {"geo": "where"})
    np.testing.assert_array_equal(from_wkt, coordinates(frame, {"latitude": "lat", "longitude": "lon"}))
    labels = np.array([0, 0, 1, 1])
    profile = geo_profile(from_wkt, labels, np.array([0.2, 0.1, 0.0, 0.0]))
    centre = profile["stats"]["0"]["centre"]
    assert centre["lon"] == pytest.approx(11.0, abs=1e-6) and centre["lat"] == pytest.approx(50.0, abs=0.01)
    assert profile["stats"]["0"]["examples"][0] == {"row": 1, "lat": 50.0, "lon": 12.0}
    assert profile["stats"]["1"]["missing"] == 0.5
    assert sorted(p[2] for p in profile["points"]) == [0, 0, 1]


def test_datetime_profile():
    values = pd.Series(["2026-01-05", "2026-01-12", "2026-01-19", "2026-03-01", "not a date"])
    stats = datetime_profile(values, np.array([0, 0, 0, 1, 1]))["stats"]
    assert stats["0"]["median"].startswith("2026-01-12")
    assert stats["0"]["weekday"] == "Monday" and stats["0"]["weekday_share"] == 1.0
    assert stats["1"]["missing"] == 0.5


def _fit_model(table: pd.DataFrame, roles: dict[str, str], k: int) -> tuple[ClusterModel, np.ndarray]:
    featurizer = make_featurizer([RoleDecision(c, r, "") for c, r in roles.items()]).fit(table)
    X = featurizer.transform(table)
    clusterer = Clusterer("kmeans", k, random_state=0).fit(X)
    return ClusterModel.from_fitted(featurizer, "passthrough", clusterer, roles, None), X


@pytest.fixture(scope="module")
def planted():
    """Two groups told apart by `signal` and `colour`; `noise` and `shade` are independent of them."""
    rng = np.random.default_rng(0)
    group = rng.integers(0, 2, 600)
    table = pd.DataFrame({
        "signal": group * 10 + rng.normal(0, 1, 600),
        "noise": rng.normal(0, 1, 600),
        "colour": np.where(group == 1, "red", "blue"),
        "shade": rng.choice(["light", "dark", "mid"], 600),
    })
    table["signal_copy"] = table["signal"] * 3 + 7
    roles = {"signal": "numeric", "noise": "numeric", "colour": "categorical", "shade": "categorical",
             "signal_copy": "numeric"}
    model, X = _fit_model(table, roles, 2)
    return table, roles, model, X, group


def test_feature_impact_ranks_planted_signal_above_noise(planted):
    table, _, model, _, _ = planted
    columns, modalities = feature_impact(model, table.iloc[:300], random_state=1)
    impact = columns.set_index("feature")["impact"]
    assert impact.idxmax() in {"signal", "signal_copy", "colour"}
    assert impact["signal"] > 5 * impact["noise"]
    assert impact["colour"] > impact["shade"]
    assert impact.max() == 1.0 and impact.min() >= 0.0
    assert columns["changed_share"].between(0, 1).all()
    assert set(modalities["feature"]) == {"numeric", "categorical"}


def test_feature_impact_blocks_equal_the_featurizer(planted):
    """The per-block shortcut must see exactly what the full pipeline sees."""
    from clusterflow.insights.impact import _Blocks

    table, _, model, X, _ = planted
    blocks = _Blocks(model, table)
    np.testing.assert_allclose(np.hstack([blocks.outputs[name] for name, *_ in blocks.blocks]), X)


def test_associations_find_the_planted_duplicate(planted):
    table, roles, *_ = planted
    for method in ("mutual_info", "cramers_v"):
        result = feature_associations(table, roles, method=method)
        pairs = {frozenset((a, b)): v for a, b, v in result.strong_pairs.itertuples(index=False)}
        assert pairs[frozenset(("signal", "signal_copy"))] == pytest.approx(1.0)
        assert frozenset(("noise", "shade")) not in pairs
        order = list(result.matrix.columns)
        assert abs(order.index("signal") - order.index("signal_copy")) == 1  # related features sit together
        np.testing.assert_allclose(result.matrix.to_numpy(), result.matrix.to_numpy().T)


def test_associations_keep_the_top_features_only(planted):
    table, roles, *_ = planted
    result = feature_associations(table, roles, ["shade", "noise", "colour"], max_features=2)
    assert sorted(result.matrix.columns) == ["noise", "shade"]


def test_compute_insights_orders_and_files(planted):
    table, _, model, X, group = planted
    insights = compute_insights(model, table, X, np.arange(0, 600, 3), model_id="kmeans-k2")
    assert insights.sizes["rows"].is_monotonic_decreasing and insights.sizes["rows"].sum() == 600
    assert list(insights.profiles)[0] in {"signal", "signal_copy", "colour"}
    sentences = describe_clusters(insights)
    assert len(sentences) == 2 and all("rows" in s for s in sentences)
    files = insight_files(insights)
    long = pd.read_csv(pd.io.common.BytesIO(files["cluster_insights.csv"]))
    assert set(long.columns) == {"feature", "role", "cluster", "statistic", "level", "value"}
    medians = long[(long["feature"] == "signal") & (long["statistic"] == "median")].set_index("cluster")["value"]
    labels = model.pipeline_[-1].predict(X)
    for cluster in ("0", "1"):
        assert medians[cluster] == pytest.approx(table["signal"][labels == int(cluster)].median())
    assert "associated_pairs.csv" in files and "insights.json" in files


def test_occlusion_map_highlights_the_planted_patch(tmp_path):
    table = write_planted_images(tmp_path)
    model, _ = image_model(table)
    activation = occlusion_map(model, table.iloc[[1]], "photo", ImageSource(), patches=4)
    assert activation.drop.shape == (4, 4)
    assert np.unravel_index(np.argmax(activation.drop), activation.drop.shape) == (0, 0)
    others = np.delete(activation.drop.ravel(), 0)
    assert activation.drop[0, 0] > 0.2 and np.abs(others).max() < activation.drop[0, 0] / 5


def test_image_views_in_compute_insights(tmp_path):
    table = write_planted_images(tmp_path)
    model, X = image_model(table)
    insights = compute_insights(model, table, X, np.arange(40), model_id="kmeans-k2", max_activation_maps=2)
    embedding = insights.embedding
    assert len(embedding) == 40 and embedding[["x", "y"]].stack().between(0, 1).all()
    np.testing.assert_allclose(embedding[["p_0", "p_1"]].sum(axis=1), 1.0)
    # the planted patch splits the images, so the projection separates the two clusters along one axis
    patched = embedding["row"] % 2 == 1
    assert embedding.groupby(patched)["cluster"].nunique().eq(1).all()
    assert len(insights.activation_maps) == 2
    assert {m.cluster for m in insights.activation_maps} == {0, 1}
    examples = insights.profiles["photo"]["stats"]
    assert all(len(examples[str(c)]["examples"]) == 4 for c in (0, 1))


def test_datetime_profile_reads_dates_as_the_featurizer_does():
    day_first = pd.Series(["03/11/2026 14:05", "26/11/2026 09:00", None, "01/12/2026 10:00"])
    stats = datetime_profile(day_first, np.array([0, 0, 1, 1]))["stats"]
    assert (stats["0"]["min"], stats["1"]["max"]) == ("2026-11-03T14:05:00", "2026-12-01T10:00:00")
    assert stats["all"]["missing"] == 0.25
    epochs = pd.Series([1_700_000_000, 1_710_000_000, 1_720_000_000])
    assert datetime_profile(epochs, np.zeros(3, dtype=int))["stats"]["all"]["min"] == "2023-11-14T22:13:20"
