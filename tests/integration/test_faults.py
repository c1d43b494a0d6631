"""Faults as an operator meets them, through the installed `clusterflow` command.

The command is killed (SIGKILL) at defined points of a run and of a rerun, on a local folder and
on moto's S3 server: the run folder's test hook ``CLUSTERFLOW_TEST_KILL_AT`` names the point.
After each kill the previous revision loads and predicts as before, no listed file is truncated
(every file matches the manifest's checksum and size), and a retry completes. Two reruns at
once: the second is refused clearly (before it starts) and the first commits whole. A
flipped byte and a hostile pickle are refused before anything is unpickled.

Every command talks to the session's Prefect server and computes on the session's Dask cluster,
so none pays for a temporary server or a new cluster; tables are tiny.
"""
from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import clusterflow
from clusterflow import rerun as core_rerun
from clusterflow.errors import IntegrityError
from clusterflow.run_folder import KILL_AT_ENV, Manifest, RunFolder

CLI = str(Path(sys.executable).with_name("clusterflow"))
TRAIN = ["--k", "2", "3", "--algorithms", "kmeans"]
KILLED = -signal.SIGKILL


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> tuple[str, pd.DataFrame]:
    from clusterflow.samples import customers

    frame = customers(160, seed=11, with_segment=False)
    path = tmp_path_factory.mktemp("faults-data") / "customers.csv"
    frame.to_csv(path, index=False)
    return str(path), frame


class Command:
    """Runs the installed ``clusterflow`` against the session's Prefect server, S3 server and Dask cluster."""

    def __init__(self, env: dict[str, str], dask_address: str):
        self.env, self.dask_address = env, dask_address

    def _argv(self, args) -> list[str]:
        argv = [CLI, *map(str, args)]
        return argv + ["--dask-address", self.dask_address] if args[0] in ("run", "rerun") else argv

    def __call__(self, *args, kill_at: str | None = None) -> subprocess.CompletedProcess:
        """Run to the end; ``kill_at`` names the point where the command kills itself."""
        env = {**self.env, **({KILL_AT_ENV: kill_at} if kill_at else {})}
        return subprocess.run(self._argv(args), env=env, capture_output=True, text=True, timeout=900)

    def start(self, *args) -> subprocess.Popen:
        return subprocess.Popen(self._argv(args), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)


@pytest.fixture(scope="module")
def clusterflow_cli(prefect_server, dask_address, s3_server) -> Command:
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    env = {**prefect_server.client_env, **aws, "HF_HUB_OFFLINE": "1"}
    env.pop(KILL_AT_ENV, None)
    return Command(env, dask_address)


def consistent(uri: str) -> Manifest:
    """The run's manifest, after reading every file it lists whole (checksum and size checked)."""
    folder = RunFolder(uri)
    manifest = folder.manifest()
    for name in manifest.files:
        folder.read(name, manifest)
    return manifest


def no_traceback(result: subprocess.CompletedProcess) -> bool:
    return "Traceback (most recent call last)" not in result.stdout + result.stderr


@pytest.fixture(scope="module")
def local_run(clusterflow_cli, table, tmp_path_factory) -> dict:
    """A run killed after its models are written, then the same run retried into the same folder
    with fewer cluster counts (so the killed attempt's kmeans-k4 is a leftover)."""
    data, _ = table
    run = tmp_path_factory.mktemp("local") / "run"
    killed = clusterflow_cli("run", data, "--out", run, "--k", "2", "3", "4", "--algorithms", "kmeans",
                             kill_at="stage:leaderboard.csv")
    left = {"models": (run / "models/kmeans-k4/model.joblib").exists(), "manifest": (run / "manifest.json").exists(),
            "lock": (run / "lock.json").exists()}
    retried = clusterflow_cli("run", data, "--out", run, *TRAIN)
    return {"run": str(run), "killed": killed, "left": left, "retried": retried}


def copy_of(run: str, tmp_path: Path) -> str:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return str(copy)


def test_a_killed_run_publishes_nothing_and_its_leftovers_never_load(local_run, table):
    assert local_run["killed"].returncode == KILLED
    assert local_run["left"] == {"models": True, "manifest": False, "lock": True}
    assert local_run["retried"].returncode == 0, local_run["retried"].stderr  # the dead holder's lock is broken
    manifest = consistent(local_run["run"])
    assert manifest.models == ["kmeans-k2", "kmeans-k3"] and not Path(local_run["run"], "lock.json").exists()
    with pytest.raises(IntegrityError, match=r"models/kmeans-k4/model.joblib is not a model of the run"):
        clusterflow.load_model(f"{local_run['run']}/models/kmeans-k4")
    assert len(clusterflow.load_model(local_run["run"]).assign(table[1])) == len(table[1])


def test_a_rerun_killed_after_its_leaderboard_leaves_the_run_as_it_was_and_a_retry_completes(
        clusterflow_cli, local_run, table, tmp_path):
    run = copy_of(local_run["run"], tmp_path)
    before = clusterflow.load_model(run).assign(table[1])
    manifest_bytes = Path(run, "manifest.json").read_bytes()

    killed = clusterflow_cli("rerun", run, "--k", "4", "5", kill_at="stage:leaderboard.csv")
    assert killed.returncode == KILLED
    assert Path(run, "manifest.json").read_bytes() == manifest_bytes
    assert consistent(run).models == ["kmeans-k2", "kmeans-k3"]
    pd.testing.assert_frame_equal(clusterflow.load_model(run).assign(table[1]), before)
    with pytest.raises(IntegrityError, match="does not list 'kmeans-k4'"):
        clusterflow.load_model(f"{run}/models/kmeans-k4")

    retried = clusterflow_cli("rerun", run, "--k", "4", "5")
    assert retried.returncode == 0, retried.stderr
    manifest = consistent(run)
    assert manifest.revision == 1 and {"kmeans-k4", "kmeans-k5"} <= set(manifest.models)
    assert set(pd.read_csv(Path(run, "leaderboard.csv"))["model_id"]) == set(manifest.models)


def test_two_reruns_at_once_the_second_is_refused_clearly_and_the_first_loses_nothing(clusterflow_cli, local_run, tmp_path):
    run = copy_of(local_run["run"], tmp_path)
    first = clusterflow_cli.start("rerun", run, "--k", "4")
    deadline = time.monotonic() + 600
    while not Path(run, "lock.json").exists():  # the first holds the run's lock ...
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGSTOP)  # ... and stays inside its change while the second tries
    try:
        second = clusterflow_cli("rerun", run, "--k", "5")
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=900)
    assert first.returncode == 0, err
    assert second.returncode == 1 and "is being changed by a rerun" in second.stderr and no_traceback(second)
    manifest = consistent(run)
    assert manifest.revision == 1 and "kmeans-k4" in manifest.models and "kmeans-k5" not in manifest.models
    assert set(RunFolder(run).leaderboard(manifest)["model_id"]) == set(manifest.models) | set(manifest.failed_models)


class Hostile:
    """A pickle that runs a command when it is loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_hostile_pickle_is_refused_before_it_runs(clusterflow_cli, local_run, table, tmp_path):
    run = copy_of(local_run["run"], tmp_path)
    top = RunFolder(run).manifest().top_model
    marker = tmp_path / "hostile-code-ran"
    Path(run, "models", top, "model.joblib").write_bytes(pickle.dumps(Hostile(marker)))
    out = tmp_path / "assignments.parquet"

    refused = clusterflow_cli("predict", run, table[0], "--out", out)
    assert refused.returncode == 2, refused.stderr
    assert f"models/{top}/model.joblib does not match the run's manifest" in refused.stderr
    assert no_traceback(refused) and not marker.exists() and not out.exists()


def test_a_flipped_byte_is_refused_by_every_reader(local_run, tmp_path):
    run = copy_of(local_run["run"], tmp_path)
    top = RunFolder(run).manifest().top_model
    path = Path(run, "models", top, "model.joblib")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    named = rf"models/{top}/model.joblib does not match the run's manifest"
    with pytest.raises(IntegrityError, match=named):
        clusterflow.load_model(run)  # predict and the serving deployment load through it
    with pytest.raises(IntegrityError, match=named):
        core_rerun.load_cached_run(run)
    from clusterflow.report import build_report

    with pytest.raises(IntegrityError, match=named):
        build_report(RunFolder(run), pd.DataFrame(), RunFolder(run).manifest())


def test_on_s3_a_killed_run_and_a_killed_rerun_leave_the_previous_revision_and_retries_complete(
        clusterflow_cli, s3_bucket, table):
    data, frame = table
    run = f"s3://{s3_bucket}/runs/faults"
    killed = clusterflow_cli("run", data, "--out", run, *TRAIN, kill_at="commit:before")
    assert killed.returncode == KILLED and not RunFolder(run).is_published()
    retried = clusterflow_cli("run", data, "--out", run, *TRAIN)
    assert retried.returncode == 0, retried.stderr
    before = clusterflow.load_model(run).assign(frame)
    manifest = consistent(run)

    killed = clusterflow_cli("rerun", run, "--k", "4", kill_at="stage:leaderboard.csv")
    assert killed.returncode == KILLED
    assert consistent(run) == manifest
    pd.testing.assert_frame_equal(clusterflow.load_model(run).assign(frame), before)
    retried = clusterflow_cli("rerun", run, "--k", "4")
    assert retried.returncode == 0, retried.stderr
    assert "kmeans-k4" in consistent(run).models
