"""All modalities in one table: the demo sample (numbers, labels, reviews, photos, homes) end to end."""
from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

import clusterflow
from clusterflow.samples import agreement_with_planted, write_demo_table
from clusterflow.run_folder import RunFolder
from flows.cluster import cluster

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, dask_address):
    folder = tmp_path_factory.mktemp("demo")
    data, labels = write_demo_table(800, str(folder / "data"))
    run_uri = cluster(data=data, out=str(folder / "run"), k=[3, 4, 5, 6], algorithms=["kmeans", "gmm", "ward"],
                      dask_address=dask_address)
    return run_uri, labels


def test_every_modality_gets_its_block(demo_run):
    run_uri, _ = demo_run
    manifest = RunFolder(run_uri).manifest()
    blocks = manifest.features.blocks
    assert set(blocks) == {"numeric", "categorical", "text", "image", "geo"}
    assert blocks["text"]["columns"] == ["review"]
    assert blocks["image"]["columns"] == ["photo"]
    assert blocks["geo"]["columns"] == ["latitude", "longitude"]


def test_all_modalities_together_recover_the_planted_segments(demo_run):
    run_uri, labels = demo_run
    assert agreement_with_planted(run_uri, labels) >= 0.9


def test_the_published_model_assigns_new_multimodal_rows(demo_run):
    run_uri, labels = demo_run
    manifest = RunFolder(run_uri).manifest()
    table = pd.read_csv(manifest.input.uri)
    model = clusterflow.load_model(run_uri)
    new = table.head(100).copy()
    new["photo"] = [None if pd.isna(p) else f"{manifest.input.uri.rsplit('/', 1)[0]}/{p}" for p in new["photo"]]
    assigned = model.assign(new)
    published = pd.read_parquet(f"{run_uri}/assignments.parquet").head(100)
    assert (assigned["cluster"].to_numpy() == published["cluster"].to_numpy()).all()
    assert adjusted_rand_score(labels.loc[new["customer_id"]], assigned["cluster"]) >= 0.9
