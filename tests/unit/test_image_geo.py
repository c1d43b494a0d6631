"""Image and geospatial columns: roles, validation and featurization, without a flow."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from clusterflow import runs
from clusterflow.errors import InputValidationError
from clusterflow.modalities.geo import GeoFeaturizer, parse_points
from clusterflow.modalities.image import ImageFeaturizer, prepare_image_columns, resolve_image_uri
from clusterflow.roles import infer_roles


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


@pytest.mark.parametrize("name, role", [("lat", "latitude"), ("PICKUP_LAT", "latitude"), ("pickupLat", "latitude"),
                                        ("Longitude", "longitude"), ("dropoff_lng", "longitude"),
                                        ("pickupLon", "longitude"), ("Miles_per_Gallon", None), ("flat", None),
                                        ("Chocolat", None), ("oblong", None)])
def test_coordinate_names_are_words_or_camel_case_endings(name, role):
    from clusterflow.modalities.geo import COORDINATE_RANGES

    matched = [r for r, (pattern, _) in COORDINATE_RANGES.items() if pattern.search(name)]
    assert matched == ([role] if role else [])


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
