"""`rerun`: new cluster counts on a published run's cached features, republished into the run."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer

import clusterflow
from clusterflow import rerun as core
from clusterflow import run_folder
from clusterflow.errors import InputValidationError, IntegrityError
from clusterflow.leaderboard import rank
from clusterflow.run_folder import RunFolder
from flows.cluster import cluster
from flows.rerun import rerun

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    from clusterflow.samples import customers

    folder = tmp_path_factory.mktemp("rerun-data")
    frame = customers(800, seed=5).drop(columns="segment")
    path = folder / "customers.csv"
    frame.to_csv(path, index=False)
    return str(path), frame


@pytest.fixture(scope="module")
def first_run(table, tmp_path_factory, dask_address) -> str:
    data, _ = table
    return cluster(data=data, out=str(tmp_path_factory.mktemp("rerun") / "run"), k=[2, 3],
                   algorithms=["kmeans", "gmm", "hdbscan"], dask_address=dask_address)


@pytest.fixture
def published_run(first_run, tmp_path) -> str:
    """A copy of the module's published run, for each test to change as it likes."""
    return str(shutil.copytree(first_run, tmp_path / "run"))


@pytest.fixture
def featurizer_calls(monkeypatch):
    """Counts every fit and transform of a featurizer (a ColumnTransformer) in this process."""
    calls = []
    for name in ("fit", "fit_transform", "transform"):
        original = getattr(ColumnTransformer, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(ColumnTransformer, name, counted)
    return calls


def test_rerun_adds_models_without_featurizing(published_run, table, dask_address, featurizer_calls):
    folder = RunFolder(published_run)
    before_bytes = Path(published_run, "leaderboard.csv").read_bytes()
    before = pd.read_csv(io.BytesIO(before_bytes))
    old_manifest = folder.manifest()

    rerun(run=published_run, k=[4, 6], dask_address=dask_address)

    assert featurizer_calls == []
    manifest = folder.manifest()
    board = folder.leaderboard(manifest)
    added = {"kmeans-k4", "kmeans-k6", "gmm-k4", "gmm-k6"}
    assert set(board["model_id"]) == set(before["model_id"]) | added
    assert board["rank"].tolist() == list(range(1, len(board) + 1))
    assert board["model_id"].tolist() == rank(board.drop(columns="rank"))["model_id"].tolist()  # ranked again
    assert set(manifest.models) == set(old_manifest.models) | added
    assert manifest.revision == 1 and manifest.reruns[-1].added_models == sorted(added)
    assert manifest.top_model == board.iloc[0]["model_id"]
    for model_id in manifest.models:
        assert folder.exists(f"models/{model_id}/model.joblib")
        blueprint = folder.read_json(f"models/{model_id}/blueprint.json", manifest)
        assert blueprint["model_id"] == model_id
    assert manifest.files["leaderboard.csv"].path == f"revisions/1-{manifest.change}/leaderboard.csv"
    assert Path(published_run, "revisions/0/leaderboard.csv").read_bytes() == before_bytes
    assert Path(published_run, "leaderboard.csv").read_bytes() == folder.read("leaderboard.csv", manifest)


def test_rerun_models_predict_like_the_published_assignments(published_run, table, dask_address):
    data, frame = table
    rerun(run=published_run, k=[5], model="kmeans-k2", dask_address=dask_address)
    manifest = RunFolder(published_run).manifest()
    assert manifest.reruns[-1].added_models == ["kmeans-k5"]
    new_model = clusterflow.load_model(f"{published_run}/models/kmeans-k5")
    assert len(new_model.clusters_) == 5
    top = clusterflow.load_model(published_run)
    published = pd.read_parquet(f"{published_run}/assignments.parquet")
    assert published["customer_id"].tolist() == frame["customer_id"].tolist()
    assert (top.assign(frame)["cluster"].to_numpy() == published["cluster"].to_numpy()).mean() > 0.99


def test_rerun_refuses_what_it_cannot_add(published_run):
    cached = core.load_cached_run(published_run)
    with pytest.raises(InputValidationError, match="already has every requested model"):
        core.rerun_specs(cached, [2, 3])
    with pytest.raises(InputValidationError, match="no algorithm that takes a cluster count"):
        core.rerun_specs(cached, [4], "hdbscan")
    with pytest.raises(InputValidationError, match="no model 'kmeans-k9'"):
        core.rerun_specs(cached, [4], "kmeans-k9")
    assert [s.model_id for s in core.rerun_specs(cached, [3, 4], "gmm-k2")] == ["gmm-k4"]


def test_failed_republish_leaves_the_committed_run_intact(published_run, monkeypatch):
    folder = RunFolder(published_run)
    manifest_before = Path(published_run, "manifest.json").read_bytes()
    board_before = Path(published_run, "leaderboard.csv").read_bytes()
    cached = core.load_cached_run(published_run)
    specs = core.rerun_specs(cached, [4], "kmeans-k2")
    from clusterflow.training import fit_and_score

    sample = cached.manifest.parameters["silhouette_sample"]
    results = [fit_and_score(s, cached.features.X_train, cached.features.X_validation, silhouette_sample=sample)
               for s in specs]
    write = run_folder.write_whole

    def failing_write(fs, path, data):
        if path.endswith("leaderboard.csv"):
            raise OSError("storage went away")
        return write(fs, path, data)

    with folder.locked("rerun") as lock:
        monkeypatch.setattr(run_folder, "write_whole", failing_write)
        with pytest.raises(OSError):
            core.write_rerun(cached, results, lock)
        monkeypatch.setattr(run_folder, "write_whole", write)

        assert Path(published_run, "manifest.json").read_bytes() == manifest_before
        assert Path(published_run, "leaderboard.csv").read_bytes() == board_before
        manifest = folder.manifest()
        assert "kmeans-k4" not in manifest.models and folder.exists("models/kmeans-k4/model.joblib")
        with pytest.raises(IntegrityError, match="does not list 'kmeans-k4'"):
            clusterflow.load_model(f"{published_run}/models/kmeans-k4")  # a leftover is never loaded
        core.write_rerun(cached, results, lock)  # a retry completes the republish
    assert "kmeans-k4" in folder.manifest().models
    assert Path(published_run, "revisions/0/leaderboard.csv").read_bytes() == board_before
