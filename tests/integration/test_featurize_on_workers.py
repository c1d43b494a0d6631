"""The fitted featurizer applied on the Dask workers in partitions gives the in-process features and labels.

A small table with every modality (numeric, categorical, text, image, geo, datetime) is prepared
twice with the same seed: in this process, and with the session's cluster of two worker
processes transforming the validation rows (the threshold lowered so a tiny table uses them).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from distributed import Client

from clusterflow import featurize_on_workers, runs
from clusterflow.parameters import parse_parameters
from clusterflow.samples import multimodal_customers


@pytest.fixture(scope="module")
def mixed_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed")
    frame = multimodal_customers(160, str(folder), seed=4, image_size=32, with_segment=False)
    frame["signed_up"] = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(
        np.random.default_rng(4).integers(0, 400 * 24, len(frame)), unit="h")
    inputs = runs.check_input(frame, None, data_uri=str(folder / "mixed.csv"), sha256="mixed",
                              image_root=str(folder))
    assert {"numeric", "categorical", "text", "image", "datetime", "latitude"} <= set(inputs.roles.values())
    return inputs, folder


def test_validation_rows_featurized_on_the_workers_equal_the_in_process_path(mixed_inputs, dask_address,
                                                                              monkeypatch):
    inputs, folder = mixed_inputs

    def prepare(client=None, cache="here"):
        params = parse_parameters(k=[3], algorithms=["kmeans"], seed=2, validation_fraction=0.5,
                                  cache=str(folder / cache))
        return runs.prepare_features(inputs, params, client=client), params

    here, params = prepare()
    monkeypatch.setattr(featurize_on_workers, "COSTLY_MIN_ROWS", 10)
    monkeypatch.setattr(featurize_on_workers, "MIN_PARTITION_ROWS", 16)
    with Client(dask_address) as client:
        client.run(featurize_on_workers._LOADED.clear)
        there, _ = prepare(client, cache="there")
        loaded = client.run(lambda: len(featurize_on_workers._LOADED))

    assert sum(loaded.values()) >= 1  # the validation partitions ran on the workers
    np.testing.assert_array_equal(there.X_train, here.X_train)
    np.testing.assert_allclose(there.X_validation, here.X_validation, atol=1e-5)
    labels = {}
    for name, prepared in (("here", here), ("there", there)):
        results = runs.fit_candidates(prepared, params.silhouette_sample)
        labels[name] = [r.clusterer.predict(prepared.X_validation) for r in results]
        texts = runs.block_summary(inputs, prepared)["text"]["featurizer"]
        labels[name].append((texts["texts_encoded"], texts["cache_hits"]))
    for a, b in zip(labels["here"][:-1], labels["there"][:-1]):
        np.testing.assert_array_equal(a, b)
    assert labels["here"][-1] == labels["there"][-1]  # the workers' embeddings are counted in the manifest


def test_small_or_in_process_work_stays_here(dask_address):
    roles = {"review": "text", "x": "numeric"}
    with Client(dask_address) as client:
        assert featurize_on_workers.worth_the_workers(client, roles, featurize_on_workers.COSTLY_MIN_ROWS)
        assert not featurize_on_workers.worth_the_workers(client, roles, featurize_on_workers.COSTLY_MIN_ROWS - 1)
        assert not featurize_on_workers.worth_the_workers(client, {"x": "numeric"}, 50_000)
    assert not featurize_on_workers.worth_the_workers(None, roles, 10**6)
