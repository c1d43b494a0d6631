"""Text columns: the cluster flow on text alone, the embedding cache, prediction, TF-IDF, bad input.

Everything runs for real: the all-MiniLM-L6-v2 model from its offline package, the
Prefect harness and a Dask cluster. Cache behaviour is asserted by counting the texts
the model actually encoded (recorded by the featurizer and in the manifest).
"""
from __future__ import annotations

import os
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

import clusterflow
from clusterflow.embedding_cache import EmbeddingCache
from clusterflow.modalities.text import SentenceEmbedder
from clusterflow.samples import reviews
from clusterflow.run_folder import RunFolder
from flows.cli import main
from flows.cluster import cluster

K, ALGORITHMS = [3, 4, 5], ["kmeans", "gmm"]


@pytest.fixture(scope="module")
def reviews_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reviews")
    table = reviews(300, seed=5)
    data = folder / "reviews.csv"
    table.drop(columns="segment").to_csv(data, index=False)
    return folder, str(data), table


@pytest.fixture(scope="module")
def text_run(reviews_csv, prefect_harness, dask_address):
    folder, data, _ = reviews_csv
    return cluster(data=data, out=str(folder / "runs" / "first"), k=K, algorithms=ALGORITHMS,
                   dask_address=dask_address)


def _text_block(run_uri: str) -> dict:
    return RunFolder(run_uri).manifest().features.blocks["text"]


def _encoder_of(model) -> SentenceEmbedder:
    return model.pipeline_["featurizer"].named_transformers_["text"][0]


def test_text_alone_recovers_planted_topics(text_run, reviews_csv):
    folder, _, table = reviews_csv
    manifest = RunFolder(text_run).manifest()
    assert {d["column"]: d["role"] for d in manifest.roles} == {"review_id": "id", "review": "text"}
    board = pd.read_csv(f"{text_run}/leaderboard.csv")
    assert set(board["modalities"]) == {"text"}
    assignments = pd.read_parquet(f"{text_run}/assignments.parquet")
    assert assignments["review_id"].tolist() == table["review_id"].tolist()
    assert adjusted_rand_score(table["segment"], assignments["cluster"]) >= 0.8

    block = manifest.features.blocks["text"]
    assert block["weight"] == 1.0 and block["width"] == 385  # 384 dimensions + the missing flag
    embedding = block["featurizer"]
    assert embedding["model_id"].startswith("all-MiniLM-L6-v2-")
    assert embedding["device"] in ("cpu", "cuda")
    assert embedding["texts_encoded"] == table["review"].nunique() == 300
    assert embedding["cache"] == str(folder / "runs" / ".cache")
    assert (folder / "runs" / ".cache" / "embeddings" / embedding["model_id"]).is_dir()


def test_published_model_does_not_carry_the_torch_model(text_run):
    for model_id in pd.read_csv(f"{text_run}/leaderboard.csv")["model_id"]:
        assert os.path.getsize(f"{text_run}/models/{model_id}/model.joblib") < 2_000_000  # the weights are 90 MB
    assert len(pickle.dumps(_encoder_of(clusterflow.load_model(text_run)))) < 10_000


def test_rerun_with_other_k_and_weight_embeds_nothing(text_run, reviews_csv, dask_address):
    folder, data, table = reviews_csv
    rerun = cluster(data=data, out=str(folder / "runs" / "second"), k=[4, 6], algorithms=["kmeans"],
                    weights={"text": 2.0}, dask_address=dask_address)
    block = _text_block(rerun)
    assert block["weight"] == block["total_variance"] == 2.0
    embedding = block["featurizer"]
    assert embedding["texts_encoded"] == 0
    assert embedding["cache_hits"] >= 300  # every distinct text, each time the featurizer saw it
    assert embedding["encode_seconds"] == 0.0
    assignments = pd.read_parquet(f"{rerun}/assignments.parquet")
    assert adjusted_rand_score(table["segment"], assignments["cluster"]) >= 0.8


def test_prediction_embeds_only_new_texts(text_run, reviews_csv):
    _, _, table = reviews_csv
    new = reviews(60, seed=99).assign(review_id=lambda f: "N" + f["review_id"])
    known = table.head(40)
    frame = pd.concat([known, new, new.head(10).assign(review_id=lambda f: f["review_id"] + "-again")],
                      ignore_index=True)
    unseen = set(new["review"]) - set(table["review"])
    assert len(unseen) > 50

    model = clusterflow.load_model(text_run)
    before = _encoder_of(model).n_texts_encoded_
    assigned = model.assign(frame.drop(columns="segment"))
    assert _encoder_of(model).n_texts_encoded_ - before == len(unseen)

    published = pd.read_parquet(f"{text_run}/assignments.parquet").head(40)
    assert assigned["cluster"].head(40).tolist() == published["cluster"].tolist()
    assert adjusted_rand_score(new["segment"], assigned["cluster"].iloc[40:100]) >= 0.8

    reloaded = clusterflow.load_model(text_run)  # an empty memory: hits come from the store
    before = _encoder_of(reloaded).n_texts_encoded_
    pd.testing.assert_frame_equal(reloaded.assign(frame.drop(columns="segment")), assigned)
    assert _encoder_of(reloaded).n_texts_encoded_ == before


def test_cli_run_with_a_model_that_cannot_load_exits_with_the_choice(reviews_csv, prefect_harness, dask_address,
                                                                    tmp_path, capsys):
    _, data, _ = reviews_csv
    out = tmp_path / "run"
    code = main(["run", data, "--out", str(out), "--text-model", str(tmp_path / "no-such-model"),
                 "--dask-address", dask_address])
    assert code == 2
    assert "--text-featurizer tfidf" in capsys.readouterr().err
    assert not RunFolder(str(out)).is_published()


def test_tfidf_alternative_recovers_planted_topics(reviews_csv, prefect_harness, dask_address, tmp_path):
    _, data, table = reviews_csv
    run_uri = cluster(data=data, out=str(tmp_path / "tfidf"), k=K, algorithms=ALGORITHMS, text_featurizer="tfidf",
                      dask_address=dask_address)
    block = _text_block(run_uri)
    assert block["featurizer"]["featurizer"] == "tfidf+svd"
    assert not (tmp_path / ".cache" / "embeddings").exists()
    assignments = pd.read_parquet(f"{run_uri}/assignments.parquet")
    assert adjusted_rand_score(table["segment"], assignments["cluster"]) >= 0.8


def test_embedding_cache_is_shared_through_s3(s3_bucket):
    keys, vectors = ["a" * 64, "b" * 64], np.arange(6, dtype=np.float32).reshape(2, 3)
    EmbeddingCache(f"s3://{s3_bucket}/cache", "model-x").put(keys, vectors)
    other = EmbeddingCache(f"s3://{s3_bucket}/cache", "model-x")
    found = other.get(keys + ["c" * 64])
    assert sorted(found) == keys
    np.testing.assert_array_equal(found["b" * 64], vectors[1])
    assert EmbeddingCache(f"s3://{s3_bucket}/cache", "model-y").get(keys) == {}
