"""Reclustering's core: matching new clusters to old ones (stable ids, split, merge, appear, vanish) and novelty."""
from __future__ import annotations

import numpy as np
import pytest

from clusterflow.recluster import match_clusters, novel_rows


# ---------------------------------------------------------------- cluster matching (core)

def test_same_clusters_keep_their_ids_under_any_labelling():
    old = np.repeat([3, 5, 8], 20)
    new = np.repeat([1, 2, 0], 20)
    changes = match_clusters(old, new, [3, 5, 8], [0, 1, 2], next_cluster_id=9)
    assert changes.labels == {1: 3, 2: 5, 0: 8}
    assert set(changes.persisted) == {3, 5, 8}
    assert not (changes.split or changes.merged or changes.appeared or changes.vanished)
    assert changes.stability == pytest.approx(1.0) and changes.next_cluster_id == 9


def test_split_merge_appear_and_vanish_are_reported():
    # old 0 persists; old 1 splits in two; old 2 and 3 merge; old 4 vanishes; a new cluster appears
    old = np.array([0] * 30 + [1] * 30 + [2] * 20 + [3] * 20 + [4] * 10 + [0] * 15)
    new = np.array([10] * 30 + [11] * 15 + [12] * 15 + [13] * 40 + [13] * 10 + [14] * 15)
    changes = match_clusters(old, new, range(5), [10, 11, 12, 13, 14], next_cluster_id=5)
    assert changes.labels[10] == 0 and 0 in changes.persisted
    split_ids = changes.split[1]
    assert len(split_ids) == 2 and set(split_ids) == {changes.labels[11], changes.labels[12]}
    assert changes.merged == {changes.labels[13]: [2, 3, 4]}
    assert changes.appeared == [changes.labels[14]]
    assert min(changes.labels[c] for c in (11, 12, 14)) >= 5  # fresh ids never reuse an old one
    assert changes.vanished == [] and set(changes.persisted) == {0}


def test_a_cluster_whose_rows_are_gone_vanishes():
    old = np.repeat([0, 1, 2], 20)
    new = np.repeat([0, 1, 1], 20)
    changes = match_clusters(old[:40], new[:40], [0, 1, 2], [0, 1], next_cluster_id=3)
    assert changes.vanished == [2] and set(changes.persisted) == {0, 1}


def test_rows_far_from_everything_known_are_novel():
    rng = np.random.default_rng(0)
    known = rng.normal(size=(2000, 4))
    familiar, far = rng.normal(size=(500, 4)), rng.normal(size=(50, 4)) + 12
    novel = novel_rows(np.vstack([familiar, far]), known)
    assert novel[500:].all() and novel[:500].mean() < 0.05
