"""Image and geospatial columns: roles, validation, featurization, the flow end to end, prediction."""
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
from clusterflow.modalities.geo import GeoFeaturizer, parse_points
from clusterflow.modalities.image import ImageFeaturizer, prepare_image_columns, resolve_image_uri
from clusterflow.roles import infer_roles
from clusterflow.samples import multimodal_customers
from flows.cluster import cluster
from flows.predict import predict

ROWS = 700
FAST = {"k": [3, 4, 5, 6], "algorithms": ["kmeans", "gmm"]}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The demo's multimodal table (photos written beside it) and its folder."""
    folder = tmp_path_factory.mktemp("shop")
    return multimodal_customers(ROWS, str(folder), seed=21), folder


def _write(frame: pd.DataFrame, path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def _problems(excinfo) -> dict[str, list]:
    by_rule = {}
    for p in excinfo.value.problems:
        by_rule.setdefault(p.column, []).append(p)
    return by_rule


# --- roles ---------------------------------------------------------------------------------------------------

def test_roles_are_inferred_from_extensions_names_and_ranges(sample):
    table, _ = sample
    table = table.assign(spot=[f"POINT ({lon} {lat})" for lat, lon in zip(table.latitude, table.longitude)],
                         height_lat=np.linspace(100, 900, len(table)))
    roles = {d.column: d.role for d in infer_roles(table)}
    assert roles["photo"] == "image"
    assert roles["latitude"] == "latitude" and roles["longitude"] == "longitude"
    assert roles["spot"] == "geo"
    assert roles["height_lat"] == "numeric"  # named like a latitude, but its values are not in range


def test_an_unpaired_latitude_is_a_plain_number():
    table = pd.DataFrame({"lat": np.linspace(-50, 50, 30), "size": np.arange(30) % 7})
    decisions = {d.column: d for d in infer_roles(table)}
    assert decisions["lat"].role == "numeric"
    assert "not paired" in decisions["lat"].reason


# --- image paths ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("photos/a.png", "/data/shop/photos/a.png"),
    ("./photos/../photos/a.png", "/data/shop/photos/a.png"),
    ("/data/shop/b.jpg", "/data/shop/b.jpg"),
    ("../../etc/passwd", None),
    ("/etc/passwd", None),
    ("s3://bucket/a.png", None),
])
def test_image_paths_resolve_under_the_root_only(value, expected):
    assert resolve_image_uri(value, "/data/shop") == expected


@pytest.mark.parametrize("value, expected", [
    ("photos/a.png", "s3://bucket/shop/photos/a.png"),
    ("s3://bucket/shop/x/b.png", "s3://bucket/shop/x/b.png"),
    ("../other/a.png", None),
    ("s3://bucket/shopping/a.png", None),
    ("s3://other/shop/a.png", None),
    ("/etc/passwd", None),
])
def test_remote_image_paths_resolve_under_the_root_only(value, expected):
    assert resolve_image_uri(value, "s3://bucket/shop") == expected


# --- validation: one report ----------------------------------------------------------------------------------

@pytest.fixture
def broken_table(sample, tmp_path):
    """The sample's photos and coordinates, copied, with every kind of bad image and coordinate."""
    table, folder = sample
    shutil.copytree(folder / "photos", tmp_path / "photos")
    (tmp_path / "photos" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    table = table[["customer_id", "photo", "latitude", "longitude"]].head(40).copy()
    table.loc[3, "photo"] = "photos/nowhere.png"
    table.loc[5, "photo"] = "photos/broken.png"
    table.loc[7, "photo"] = "../../etc/passwd.png"
    table.loc[8, "photo"] = "/etc/hostname.png"
    table.loc[11, "latitude"] = 123.0
    table.loc[12, "longitude"] = -181.5
    return table, tmp_path


def test_bad_images_and_coordinates_come_in_one_report(broken_table):
    table, folder = broken_table
    with pytest.raises(InputValidationError) as excinfo:
        runs.load_input(_write(table, folder / "broken.csv"))
    problems = _problems(excinfo)
    photo = {p.rows[0]: p for p in problems["photo"]}
    assert set(photo) == {3, 5, 7, 8}
    assert "file not found" in photo[3].rule and "photos/nowhere.png" in photo[3].rule
    assert "not a decodable image" in photo[5].rule
    assert "outside the image root" in photo[7].rule and "outside the image root" in photo[8].rule
    assert "--on-bad-image missing" in photo[3].hint
    assert "--on-bad-image" not in photo[7].hint  # escaping the root is never allowed
    assert [p.rows for p in problems["latitude"]] == [(11,)]
    assert [p.rows for p in problems["longitude"]] == [(12,)]
    assert "[-90, 90]" in problems["latitude"][0].rule


def test_on_bad_image_missing_keeps_unreadable_files_as_missing(broken_table):
    table, folder = broken_table
    table.loc[[11, 12], ["latitude", "longitude"]] = [10.0, 10.0]
    table.loc[[7, 8], "photo"] = None
    inputs = runs.load_input(_write(table, folder / "broken.csv"), on_bad_image="missing")
    photos = inputs.frame["photo"]
    assert photos[[3, 5]].isna().all()
    assert photos.drop([3, 5, 7, 8]).map(os.path.isabs).all()


def test_escaping_the_root_is_rejected_even_when_bad_images_are_missing(broken_table):
    table, folder = broken_table
    table.loc[[11, 12], ["latitude", "longitude"]] = [10.0, 10.0]
    with pytest.raises(InputValidationError) as excinfo:
        runs.load_input(_write(table, folder / "broken.csv"), on_bad_image="missing")
    assert sorted(p.rows[0] for p in excinfo.value.problems) == [7, 8]


def test_malformed_or_out_of_range_wkt_points_name_their_rows():
    points = ["POINT (2.35 48.86)", "POINT(-0.13 51.51)", "point z (13.4 52.5 34)", None,
              "POINT (48.86)", "LINESTRING (0 0, 1 1)", "POINT (200 10)", "POINT (10 -95)"] + ["POINT (1 1)"] * 12
    table = pd.DataFrame({"where": points, "size": np.arange(20) % 5})
    from clusterflow.validation import validate_table

    with pytest.raises(InputValidationError) as excinfo:
        validate_table(table, infer_roles(table, {"where": "geo"}))
    rows = {p.rule: p.rows for p in excinfo.value.problems}
    assert rows["values are not WKT points `POINT (lon lat)`"] == (4, 5)
    assert rows["points outside latitude [-90, 90] or longitude [-180, 180]"] == (6, 7)
    parsed = parse_points(pd.Series(points[:3]))
    np.testing.assert_allclose(parsed[["longitude", "latitude"]], [[2.35, 48.86], [-0.13, 51.51], [13.4, 52.5]])


def test_a_roles_file_latitude_without_longitude_is_an_error(tmp_path):
    table = pd.DataFrame({"y": np.linspace(-50, 50, 30), "size": np.arange(30) % 7})
    roles = tmp_path / "roles.yaml"
    roles.write_text("y: latitude\n")
    with pytest.raises(InputValidationError, match="do not pair up"):
        runs.load_input(_write(table, tmp_path / "t.csv"), str(roles))


# --- featurizers ---------------------------------------------------------------------------------------------

def test_wkt_points_and_coordinate_pairs_give_the_same_features(sample):
    table, _ = sample
    wkt = table.assign(spot=[None if np.isnan(lat) else f"POINT ({lon} {lat})"
                             for lat, lon in zip(table.latitude, table.longitude)])
    from_pair = GeoFeaturizer(latitudes=["latitude"], longitudes=["longitude"]).fit_transform(table)
    from_wkt = GeoFeaturizer(points=["spot"]).fit_transform(wkt)
    np.testing.assert_allclose(from_pair, from_wkt)
    assert from_pair.shape == (len(table), 4)
    assert from_pair[:, 3].sum() == table.latitude.isna().sum()


def test_geo_features_follow_the_globe_across_the_antimeridian():
    frame = pd.DataFrame({"lat": [0.0, 0.0, 0.0, 60.0], "lon": [179.9, -179.9, 0.0, 10.0]})
    Z = GeoFeaturizer(latitudes=["lat"], longitudes=["lon"]).fit_transform(frame)[:, :3]
    assert np.linalg.norm(Z[0] - Z[1]) < 0.01 * np.linalg.norm(Z[0] - Z[2])


def test_image_featurizer_reads_in_batches_and_flags_missing(sample):
    table, folder = sample
    frame, problems = prepare_image_columns(table.head(300), ["photo"], str(folder))
    assert not problems
    whole = ImageFeaturizer().fit(frame[["photo"]])
    batched = ImageFeaturizer(batch_size=7).fit(frame[["photo"]])
    np.testing.assert_allclose(whole.transform(frame[["photo"]]), batched.transform(frame[["photo"]]))
    Z = whole.transform(frame[["photo"]])
    missing = frame["photo"].isna().to_numpy()
    assert missing.any()
    names = list(whole.get_feature_names_out())
    assert (Z[:, names.index("photo_missing")] == missing).all()
    assert (Z[missing, :-1] == 0).all()  # missing images sit at the training mean
    groups = [g.split(":")[1] for g in whole.groups_]
    assert groups == ["colour", "texture", "thumbnail", "missing"]


def test_image_featurizer_lists_files_gone_since_fit(sample, tmp_path):
    table, folder = sample
    frame, _ = prepare_image_columns(table.head(30), ["photo"], str(folder))
    featurizer = ImageFeaturizer().fit(frame[["photo"]])
    moved = frame.assign(photo=frame["photo"].str.replace(str(folder), str(tmp_path), regex=False))
    with pytest.raises(InputValidationError, match="file not found") as excinfo:
        featurizer.transform(moved[["photo"]])
    problems = excinfo.value.problems
    assert len(problems) == 21  # twenty listed one by one, then one that counts the rest
    assert [row for p in problems for row in p.rows] == list(range(30))


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
    manifest = clusterflow.storage.RunFolder(run_uri).manifest()
    assert {d["column"]: d["role"] for d in manifest["roles"]}["photo"] == "image"
    assert manifest["features"]["blocks"]["image"]["columns"] == ["photo"]
    assert _ari(run_uri, table) >= 0.8


def test_geo_alone_recovers_the_planted_segments(geo_run):
    run_uri, table = geo_run
    manifest = clusterflow.storage.RunFolder(run_uri).manifest()
    assert manifest["features"]["blocks"]["geo"]["columns"] == ["latitude", "longitude"]
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
    assert (model.predict(new)["cluster"].to_numpy() == published["cluster"].to_numpy()).all()
    new.loc[new.index[4], "latitude"] = 95.0
    with pytest.raises(InputValidationError, match=r"latitudes outside \[-90, 90\]") as excinfo:
        model.predict(new)
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
