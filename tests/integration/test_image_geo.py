"""Image and geospatial columns: featurizing on Dask, the flow end to end, prediction, a local CLIP model, S3."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score

import clusterflow
from clusterflow import runs
from clusterflow.errors import InputValidationError
from clusterflow.modalities.image import ImageFeaturizer, prepare_image_columns
from flows.cluster import cluster
from flows.predict import predict

FAST = {"k": [3, 4, 5, 6], "algorithms": ["kmeans", "gmm"]}


def _write(frame: pd.DataFrame, path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


# --- featurizers ---------------------------------------------------------------------------------------------


def test_image_features_on_dask_equal_the_local_loop(sample, dask_address):
    from distributed import Client, get_task_stream

    table, folder = sample
    frame, _ = prepare_image_columns(table.head(200), ["photo"], str(folder))
    local = ImageFeaturizer(batch_size=32).fit_transform(frame[["photo"]])
    with Client(dask_address) as client, get_task_stream(client) as stream:
        distributed = ImageFeaturizer(batch_size=32, parallel_min_images=100).fit_transform(frame[["photo"]])
    np.testing.assert_allclose(local, distributed)
    assert len(stream.data) >= 200 // 32  # the batches ran as tasks on the cluster's workers


# --- the flow end to end -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def image_run(sample, tmp_path_factory, dask_address, prefect_harness):
    table, folder = sample
    data = _write(table[["customer_id", "photo"]], folder / "photos.csv")
    run_uri = cluster(data=data, out=str(tmp_path_factory.mktemp("runs") / "photos"), dask_address=dask_address,
                      **FAST)
    return run_uri, table


@pytest.fixture(scope="module")
def geo_run(sample, tmp_path_factory, dask_address, prefect_harness):
    table, folder = sample
    data = _write(table[["customer_id", "latitude", "longitude"]], folder / "homes.csv")
    run_uri = cluster(data=data, out=str(tmp_path_factory.mktemp("runs") / "homes"), dask_address=dask_address,
                      **FAST)
    return run_uri, table


def _ari(run_uri: str, table: pd.DataFrame) -> float:
    assignments = pd.read_parquet(f"{run_uri}/assignments.parquet")
    assert assignments["customer_id"].tolist() == table["customer_id"].tolist()
    return adjusted_rand_score(table["segment"], assignments["cluster"])


def test_images_alone_recover_the_planted_segments(image_run):
    run_uri, table = image_run
    manifest = clusterflow.run_folder.RunFolder(run_uri).manifest()
    assert {d["column"]: d["role"] for d in manifest.roles}["photo"] == "image"
    assert manifest.features.blocks["image"]["columns"] == ["photo"]
    assert _ari(run_uri, table) >= 0.8


def test_geo_alone_recovers_the_planted_segments(geo_run):
    run_uri, table = geo_run
    manifest = clusterflow.run_folder.RunFolder(run_uri).manifest()
    assert manifest.features.blocks["geo"]["columns"] == ["latitude", "longitude"]
    assert _ari(run_uri, table) >= 0.8


def test_a_missing_image_fails_the_flow_before_any_training(sample, tmp_path, prefect_harness):
    table, folder = sample
    table = table[["customer_id", "photo"]].copy()
    table.loc[2, "photo"] = "photos/gone.png"
    with pytest.raises(InputValidationError, match="gone.png"):
        cluster(data=_write(table, folder / "gone.csv"), out=str(tmp_path / "run"), **FAST)


def test_predict_reads_new_images_relative_to_the_new_table(image_run, tmp_path, dask_address, prefect_harness):
    run_uri, table = image_run
    published = pd.read_parquet(f"{run_uri}/assignments.parquet").set_index("customer_id")["cluster"]
    new = table[["customer_id", "photo"]].dropna().head(60).copy()
    source = os.path.dirname(pd.read_json(f"{run_uri}/manifest.json", typ="series")["input"]["uri"])
    (tmp_path / "incoming").mkdir()
    for i, photo in enumerate(new["photo"]):
        shutil.copy(os.path.join(source, photo), tmp_path / "incoming" / f"new-{i}.png")
    new["photo"] = [f"incoming/new-{i}.png" for i in range(len(new))]
    new.to_csv(tmp_path / "new.csv", index=False)
    predict(model=run_uri, data=str(tmp_path / "new.csv"), out=str(tmp_path / "assigned.parquet"))
    assigned = pd.read_parquet(tmp_path / "assigned.parquet")
    assert assigned["customer_id"].tolist() == new["customer_id"].tolist()
    assert (assigned["cluster"].to_numpy() == published.loc[new["customer_id"]].to_numpy()).all()
    predict(model=run_uri, data=str(tmp_path / "new.csv"), out=str(tmp_path / "parts"), blocksize="400B",
            dask_address=dask_address)
    parts = pd.read_parquet(tmp_path / "parts").sort_values("customer_id", kind="stable").reset_index(drop=True)
    assert len(list((tmp_path / "parts").glob("*.parquet"))) > 1
    pd.testing.assert_frame_equal(assigned.sort_values("customer_id").reset_index(drop=True), parts,
                                  check_dtype=False)

    new.loc[new.index[0], "photo"] = "../../../etc/passwd.png"
    new.to_csv(tmp_path / "escaping.csv", index=False)
    with pytest.raises(InputValidationError, match="outside the image root"):
        predict(model=run_uri, data=str(tmp_path / "escaping.csv"), out=str(tmp_path / "never.parquet"))


def test_predict_on_new_locations_validates_them(geo_run):
    run_uri, table = geo_run
    model = clusterflow.load_model(run_uri)
    new = table[["customer_id", "latitude", "longitude"]].head(40).copy()
    published = pd.read_parquet(f"{run_uri}/assignments.parquet").head(40)
    assert (model.assign(new)["cluster"].to_numpy() == published["cluster"].to_numpy()).all()
    new.loc[new.index[4], "latitude"] = 95.0
    with pytest.raises(InputValidationError, match=r"latitudes outside \[-90, 90\]") as excinfo:
        model.assign(new)
    assert excinfo.value.problems[0].rows == (4,)


# --- a local CLIP-style model --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A small CLIP model (random weights) saved as a local sentence-transformers folder.

    It exercises the real loading and image-encoding path offline; its embeddings
    carry no meaning, so nothing here judges their quality.
    """
    import json

    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.transformer import Transformer
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = tmp_path_factory.mktemp("clip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab[letter], vocab[f"{letter}</w>"] = len(vocab), len(vocab) + 1
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    layers = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    config = CLIPConfig(text_config=dict(vocab_size=len(vocab), max_position_embeddings=32, **layers),
                        vision_config=dict(image_size=32, patch_size=8, **layers), projection_dim=8)
    CLIPModel(config).save_pretrained(folder / "hf")
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                  tokenizer=CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
                  ).save_pretrained(folder / "hf")
    SentenceTransformer(modules=[Transformer(str(folder / "hf"))]).save(str(folder / "model"))
    return str(folder / "model")


def test_a_local_clip_model_embeds_the_images(sample, tiny_clip):
    from sentence_transformers import SentenceTransformer

    table, folder = sample
    frame, _ = prepare_image_columns(table.head(40), ["photo"], str(folder))
    featurizer = ImageFeaturizer(model=tiny_clip, batch_size=16)
    Z = featurizer.fit_transform(frame[["photo"]])
    assert [g.split(":")[1] for g in featurizer.groups_] == ["embedding", "missing"]
    assert Z.shape == (40, 8 + 1)
    present = frame["photo"].notna().to_numpy()
    encoder = SentenceTransformer(tiny_clip, device="cpu")
    expected = encoder.encode([Image.open(p).convert("RGB") for p in frame["photo"][present]])
    standardized = (expected - expected.mean(axis=0)) / expected.std(axis=0) / np.sqrt(8)
    np.testing.assert_allclose(Z[present, :8], standardized, rtol=1e-4, atol=1e-5)
    assert (Z[~present, :8] == 0).all() and (Z[:, 8] == ~present).all()


# --- images on S3 --------------------------------------------------------------------------------------------

def test_images_on_s3_resolve_against_the_table_folder(sample, s3_bucket):
    import s3fs

    table, folder = sample
    fs = s3fs.S3FileSystem()
    head = table[["customer_id", "photo", "latitude", "longitude"]].head(30).copy()
    for photo in head["photo"].dropna():
        fs.put(str(folder / photo), f"{s3_bucket}/shop/{photo}")
    head.loc[6, "photo"] = "../elsewhere/x.png"
    with fs.open(f"{s3_bucket}/shop/customers.csv", "w") as f:
        head.to_csv(f, index=False)
    with pytest.raises(InputValidationError) as excinfo:
        runs.load_input(f"s3://{s3_bucket}/shop/customers.csv")
    assert [(p.column, p.rows) for p in excinfo.value.problems] == [("photo", (6,))]

    head.loc[6, "photo"] = f"s3://{s3_bucket}/shop/{table['photo'].dropna().iloc[0]}"
    with fs.open(f"{s3_bucket}/shop/customers.csv", "w") as f:
        head.to_csv(f, index=False)
    inputs = runs.load_input(f"s3://{s3_bucket}/shop/customers.csv")
    assert inputs.frame["photo"].dropna().str.startswith(f"s3://{s3_bucket}/shop/photos/").all()
    local, _ = prepare_image_columns(head, ["photo"], str(folder))
    local.loc[6, "photo"] = str(folder / table["photo"].dropna().iloc[0])
    np.testing.assert_allclose(ImageFeaturizer().fit_transform(inputs.frame[["photo"]]),
                               ImageFeaturizer().fit_transform(local[["photo"]]))
