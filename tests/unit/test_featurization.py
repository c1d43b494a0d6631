"""Featurization that keeps the structure: numeric scaling, block weights."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from clusterflow import Clustering
from clusterflow.blueprint import STRUCTURE_SHARE_RANGE, block_weights, make_featurizer, weigh_blocks_by_structure
from clusterflow.modalities.base import FeaturizeOptions
from clusterflow.modalities.numeric import SpreadScaler, make_numeric_featurizer
from clusterflow.roles import infer_roles
from clusterflow.scoring import cluster_structure


def test_a_feature_with_its_mass_in_a_narrow_band_is_scaled_by_its_std():
    rng = np.random.default_rng(0)
    narrow = np.concatenate([rng.normal(0, 0.01, 900), rng.normal(0, 5, 100)])  # IQR tiny, tail wide
    mostly_zero = np.where(rng.random(1000) < 0.1, rng.uniform(100, 2000, 1000), 0.0)  # IQR 0 (porch square feet)
    normal = rng.normal(50, 10, 1000)
    Z = SpreadScaler().fit_transform(np.column_stack([narrow, mostly_zero, normal]))
    assert Z.std(axis=0) == pytest.approx([1.0, 1.0, 1.0], rel=0.05)


def test_a_bimodal_feature_is_scaled_by_its_iqr_and_keeps_its_spread():
    rng = np.random.default_rng(1)
    bimodal = np.concatenate([rng.normal(-3, 0.5, 500), rng.normal(3, 0.5, 500)])
    Z = SpreadScaler().fit_transform(bimodal[:, None])
    assert 0.4 < Z.std() < 1.0  # never above one; the two groups stay apart
    assert np.median(Z) == pytest.approx(0.0, abs=0.05)


def test_missing_flags_and_booleans_stay_zero_one():
    rng = np.random.default_rng(2)
    values = rng.normal(size=500)
    values[rng.random(500) < 0.02] = np.nan
    frame = pd.DataFrame({"x": values, "member": rng.random(500) < 0.03})
    Z = make_numeric_featurizer(["x", "member"], FeaturizeOptions()).fit_transform(frame)
    assert set(np.unique(Z[:, 1])) == {0.0, 1.0} and set(np.unique(Z[:, 2])) == {0.0, 1.0}  # boolean, flag of x
    assert Z[:, 0].std() == pytest.approx(1.0, rel=0.05)


def test_rows_missing_several_columns_together_are_not_split_off():
    rng = np.random.default_rng(3)
    group = rng.integers(0, 2, 600)
    frame = pd.DataFrame({c: np.where(group == 1, 2.0, -2.0) + rng.normal(size=600) for c in "ab"})
    for c in "cde":
        frame[c] = rng.normal(size=600)
    frame.loc[rng.random(600) < 0.05, ["c", "d", "e"]] = np.nan  # a form section left blank: three flags, same rows
    clustering = Clustering(k=[2], algorithms=["kmeans"]).fit(frame)
    assert adjusted_rand_score(group, clustering.labels_) > 0.9  # unit-variance flags: ARI 0.00


def test_block_weights_are_columns_with_a_floor_of_half_an_equal_share():
    weights = block_weights({"numeric": [f"x{i}" for i in range(30)], "geo": ["lat", "lon"]}, {"geo": 2.0})
    assert weights == {"numeric": 30, "geo": 8 * 2.0}  # floor: 32 columns / (2 x 2 blocks)
    assert block_weights({"numeric": list("abcde"), "categorical": ["channel", "plan"]}, {}) == {
        "numeric": 5, "categorical": 2}  # above the floor (7 / 4): by columns


def test_a_location_that_holds_the_groups_does_not_drown_under_thirty_numeric_columns():
    rng = np.random.default_rng(4)
    town = rng.integers(0, 3, 450)
    centres = np.array([[38.58, -121.49], [38.68, -121.23], [38.45, -121.40]])  # three towns 15-25 km apart
    frame = pd.DataFrame(rng.normal(size=(450, 30)), columns=[f"x{i}" for i in range(30)])
    frame["latitude"], frame["longitude"] = (centres[town] + rng.normal(scale=0.02, size=(450, 2))).T
    clustering = Clustering(k=[3], algorithms=["kmeans"]).fit(frame)
    assert adjusted_rand_score(town, clustering.labels_) > 0.9  # by columns alone (2 of 32 units): ARI 0.48


def test_cluster_structure_is_high_for_separated_groups_and_near_zero_for_one_cloud():
    rng = np.random.default_rng(5)
    groups = np.repeat(np.eye(3) * 6, 200, axis=0) + rng.normal(size=(600, 3))
    cloud = rng.normal(size=(600, 3)) * [3.0, 1.0, 0.5]  # elongated: halving it scores a high silhouette
    assert cluster_structure(groups, seed=0) > 0.3
    assert abs(cluster_structure(cloud, seed=0)) < 0.05
    assert np.isnan(cluster_structure(np.ones((50, 2)), seed=0))


def test_the_block_that_holds_the_groups_gets_the_larger_share_of_the_variance():
    rng = np.random.default_rng(6)
    town = rng.integers(0, 3, 600)
    centres = np.array([[38.58, -121.49], [38.68, -121.23], [38.45, -121.40]])
    frame = pd.DataFrame(rng.normal(size=(600, 4)), columns=["a", "b", "c", "d"])  # no groups
    frame["latitude"], frame["longitude"] = (centres[town] + rng.normal(scale=0.02, size=(600, 2))).T
    frame["plan"] = rng.choice(["basic", "plus", "pro"], 600)  # one-hot levels: not measured
    featurizer = make_featurizer(infer_roles(frame))
    F = featurizer.fit_transform(frame)
    before = {name: featurizer.named_transformers_[name][-1].total_variance for name in ("numeric", "geo", "categorical")}
    F, weighting = weigh_blocks_by_structure(featurizer, F, seed=0)
    assert set(weighting) == {"numeric", "geo"}
    assert weighting["geo"]["structure"] > 0.3 > weighting["numeric"]["structure"]
    assert STRUCTURE_SHARE_RANGE[0] <= weighting["numeric"]["structure_share"] < 1 < weighting["geo"]["structure_share"]
    for name in ("numeric", "geo"):
        scaler = featurizer.named_transformers_[name][-1]
        assert scaler.total_variance == pytest.approx(before[name] * weighting[name]["structure_share"])
        assert F[:, featurizer.output_indices_[name]].var(axis=0).sum() == pytest.approx(scaler.total_variance)
    assert featurizer.named_transformers_["categorical"][-1].total_variance == before["categorical"]
    np.testing.assert_allclose(featurizer.transform(frame), F)  # new rows are weighted as the fitted ones


def test_a_refitted_clone_gives_the_blocks_the_same_weights():
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=list("abc"))
    frame["latitude"], frame["longitude"] = (np.repeat([[38.5, -121.4], [38.7, -121.2]], 150, axis=0)
                                             + rng.normal(scale=0.02, size=(300, 2))).T
    featurizer = make_featurizer(infer_roles(frame))
    F, _ = weigh_blocks_by_structure(featurizer, featurizer.fit_transform(frame), seed=0)
    np.testing.assert_allclose(clone(featurizer).fit_transform(frame), F)


def test_one_measurable_block_keeps_its_weight():
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"x": rng.normal(size=100), "y": rng.normal(size=100), "plan": ["a", "b"] * 50,
                          "latitude": 38.5, "longitude": -121.4})  # one location: nothing to measure
    featurizer = make_featurizer(infer_roles(frame, {"latitude": "latitude", "longitude": "longitude"}))
    F = featurizer.fit_transform(frame)
    assert "geo" in featurizer.named_transformers_ and "numeric" in featurizer.named_transformers_
    assert weigh_blocks_by_structure(featurizer, F.copy(), seed=0)[1] == {}


def test_a_ten_row_table_with_a_wide_block_is_weighted():
    rng = np.random.default_rng(9)
    frame = pd.DataFrame(rng.normal(size=(10, 12)), columns=[f"x{i}" for i in range(12)])
    frame["latitude"], frame["longitude"] = 38.5 + rng.normal(size=10), -121.4 + rng.normal(size=10)
    clustering = Clustering(k=[2], algorithms=["kmeans"]).fit(frame)
    assert len(clustering.labels_) == 10
