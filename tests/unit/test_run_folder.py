"""The run folder's own guarantees, on a local folder and on moto's S3 server: whole-object writes,
exclusive creates, revisions that never overwrite a listed file, the writer's lock, the revision
check at commit, checksums and the manifest's signature."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from clusterflow import run_folder
from clusterflow.errors import ConcurrentChangeError, IntegrityError, RunExistsError, RunLockedError
from clusterflow.run_folder import (FeaturesRecord, InputRecord, Manifest, PartitionRecord, RunFolder,
                                    parse_manifest)
from clusterflow.storage import create_new, write_whole


def draft_manifest() -> Manifest:
    return Manifest(run_id="r", created_at="2026-12-01T00:00:00+00:00",
                    input=InputRecord(uri="t.csv", sha256="0" * 64, rows=3, columns=1), roles=[], dropped_columns=[],
                    columns=[], id_column=None, parameters={"seed": 0}, k_values=[2], algorithms=["kmeans"],
                    partition=PartitionRecord(train_rows=2, validation_rows=1, seed=0),
                    features=FeaturesRecord(featurized_width=1, reduced_width=1, reducer=None, blocks={}),
                    top_model="kmeans-k2", models=["kmeans-k2"], failed_models={}, timings_seconds={}, versions={})


@pytest.fixture(params=["local", "s3"])
def folder(request, tmp_path):
    if request.param == "local":
        return RunFolder(str(tmp_path / "run"))
    bucket = request.getfixturevalue("s3_bucket")
    return RunFolder(f"s3://{bucket}/run")


def published(folder: RunFolder) -> Manifest:
    draft = folder.stage(draft_manifest(), {"leaderboard.csv": "v0", "models/kmeans-k2/model.joblib": b"m"})
    return folder.commit(draft)


def test_a_local_write_leaves_no_partial_or_temporary_file(tmp_path):
    fs = RunFolder(str(tmp_path)).fs
    write_whole(fs, str(tmp_path / "a" / "x.bin"), b"1" * 1000)
    write_whole(fs, str(tmp_path / "a" / "x.bin"), b"2")
    assert (tmp_path / "a" / "x.bin").read_bytes() == b"2" and os.listdir(tmp_path / "a") == ["x.bin"]


def test_exclusive_create_refuses_an_existing_object(folder):
    path = f"{folder.path}/lock.json"
    assert create_new(folder.fs, path, b"first")
    assert not create_new(folder.fs, path, b"second")
    assert folder.fs.cat_file(path) == b"first"


def test_a_later_revision_never_overwrites_a_listed_file(folder):
    first = published(folder)
    with pytest.raises(RunExistsError):
        folder.commit(folder.stage(draft_manifest(), {}))  # a second first revision
    with folder.locked("test") as lock:
        draft = folder.stage(first.next_revision(), {"leaderboard.csv": "v1", "models/kmeans-k3/model.joblib": b"n"})
        assert folder.read("leaderboard.csv", folder.manifest()) == b"v0"  # staged, not committed
        second = folder.commit(draft, lock)
    assert second.files["leaderboard.csv"].path == f"revisions/1-{second.change}/leaderboard.csv"
    assert second.files["models/kmeans-k3/model.joblib"].path is None
    assert folder.read("leaderboard.csv", folder.manifest()) == b"v1"
    assert folder.fs.cat_file(f"{folder.path}/leaderboard.csv") == b"v1"  # the plain name's copy
    assert folder.fs.cat_file(f"{folder.path}/revisions/0/leaderboard.csv") == b"v0"
    assert not folder.exists("lock.json")


def test_a_commit_on_a_changed_run_is_refused(folder):
    base = published(folder)
    with folder.locked("first") as lock:
        folder.commit(folder.stage(base.next_revision(), {"leaderboard.csv": "a"}), lock)
        with pytest.raises(ConcurrentChangeError, match="changed while this change ran"):
            folder.commit(folder.stage(base.next_revision(), {"leaderboard.csv": "b"}), lock)
    assert folder.read("leaderboard.csv", folder.manifest()) == b"a"  # the stale change wrote under its own names
    with pytest.raises(ConcurrentChangeError, match="no longer holds the run's lock"):
        folder.commit(folder.stage(folder.manifest().next_revision(), {}), lock)


def test_one_writer_at_a_time_and_a_dead_holder_does_not_block(folder):
    with folder.locked("rerun"):
        with pytest.raises(RunLockedError, match="being changed by a rerun"):
            folder.locked("report").__enter__()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = json.dumps({"token": "t", "purpose": "rerun", "pid": int(dead.stdout), "host": os.uname().nodename,
                        "acquired_at": "2026-12-01T00:00:00+00:00", "expires_at": "2999-01-01T00:00:00+00:00"})
    write_whole(folder.fs, f"{folder.path}/lock.json", stale.encode())
    with folder.locked("rerun") as lock:  # its process is gone
        assert lock.held()
    expired = json.loads(stale) | {"pid": 1, "host": "elsewhere", "expires_at": "2000-01-01T00:00:00+00:00"}
    write_whole(folder.fs, f"{folder.path}/lock.json", json.dumps(expired).encode())
    with folder.locked("rerun") as lock:
        assert lock.held()


def test_a_writer_may_wait_for_the_lock_to_be_released(folder):
    held = folder.locked("promote")
    held.__enter__()
    threading.Timer(1.0, held.__exit__, (None, None, None)).start()
    started = time.monotonic()
    with pytest.raises(RunLockedError):
        folder.locked("promote", wait=0.2).__enter__()  # still held when the wait ends
    with folder.locked("promote", wait=30) as lock:
        assert lock.held() and time.monotonic() - started >= 0.9


def test_a_changed_or_unlisted_file_is_refused_by_name(folder):
    manifest = published(folder)
    write_whole(folder.fs, f"{folder.path}/models/kmeans-k2/model.joblib", b"M")
    with pytest.raises(IntegrityError, match=r"models/kmeans-k2/model.joblib does not match the run's manifest"):
        folder.read("models/kmeans-k2/model.joblib", manifest)
    with pytest.raises(IntegrityError, match="models/gmm-k9/model.joblib is not a file of the run"):
        folder.read("models/gmm-k9/model.joblib", manifest)


def test_a_signed_manifest_is_checked_before_use(tmp_path, monkeypatch):
    folder = RunFolder(str(tmp_path / "run"))
    monkeypatch.setenv(run_folder.SIGNING_KEY_ENV, "secret")
    published(folder)
    assert folder.manifest().signature
    path = tmp_path / "run" / "manifest.json"
    forged = json.loads(path.read_text())
    forged["files"]["models/kmeans-k2/model.joblib"]["sha256"] = "f" * 64
    path.write_text(json.dumps(forged))
    with pytest.raises(IntegrityError, match="signature that does not match"):
        folder.manifest()
    monkeypatch.setenv(run_folder.SIGNING_KEY_ENV, "another")
    with pytest.raises(IntegrityError, match="is not signed"):
        parse_manifest(draft_manifest().model_dump_json().encode(), "m.json")
