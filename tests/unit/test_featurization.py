"""Featurization that keeps the structure: numeric scaling, block weights."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from clusterflow import Clustering
from clusterflow.blueprint import block_weights
from clusterflow.modalities.base import FeaturizeOptions
from clusterflow.modalities.numeric import SpreadScaler, make_numeric_featurizer


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
