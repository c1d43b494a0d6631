"""A Dask deployment started from the `dask` command line (a scheduler and two worker processes on
127.0.0.1), used by `clusterflow run --dask-address` and `clusterflow predict --dask-address`; the
results must equal a local run's (on the session's LocalCluster) for the same seed. The commands talk to the
session's Prefect server, so neither pays for a temporary one."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest

import clusterflow
from clusterflow.samples import customers
from clusterflow.run_folder import RunFolder
from deployments.local_server import stop_process_group
from flows.cluster import cluster

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def dask_deployment(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes; yields the scheduler's address."""
    folder = tmp_path_factory.mktemp("dask-cli")
    scheduler_file = folder / "scheduler.json"
    with ExitStack() as stack:
        def start(*args: str) -> subprocess.Popen:
            log = stack.enter_context(open(folder / f"{args[0]}-{len(list(folder.glob('*.log')))}.log", "wb"))
            process = subprocess.Popen([str(BIN / "dask"), *args], stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            stack.callback(stop_process_group, process)
            return process

        start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(scheduler_file))
        for _ in range(2):
            start("worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1", "--nthreads", "1",
                  "--no-dashboard")
        from distributed import Client

        deadline = time.monotonic() + 90
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, "the scheduler wrote no scheduler file"
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
            workers = client.scheduler_info()["workers"]
        assert len(workers) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers)
        yield address


def test_run_and_predict_on_a_dask_cli_deployment_equal_a_local_run(dask_deployment, tmp_path, prefect_harness,
                                                                    prefect_server, dask_address):
    env = {**prefect_server.client_env, "HF_HUB_OFFLINE": "1"}
    data = tmp_path / "customers.csv"
    table = customers(240, seed=8).drop(columns="segment")
    table.to_csv(data, index=False)
    options = ["--k", "3", "4", "--algorithms", "kmeans,gmm", "--seed", "7"]
    remote = tmp_path / "remote"
    done = subprocess.run([str(BIN / "clusterflow"), "run", str(data), *options, "--out", str(remote),
                           "--dask-address", dask_deployment], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    local = cluster(data=str(data), k=[3, 4], algorithms=["kmeans", "gmm"], seed=7, out=str(tmp_path / "local"),
                    dask_address=dask_address)

    columns = ["model_id", "clusters", "silhouette", "calinski_harabasz", "davies_bouldin"]
    boards = [pd.read_csv(f"{run}/leaderboard.csv")[columns] for run in (remote, local)]
    pd.testing.assert_frame_equal(boards[0], boards[1])
    top = RunFolder(str(remote)).manifest().top_model
    assert top == RunFolder(local).manifest().top_model
    assert "Leaderboard (best first, --metric auto)" in done.stdout and f"Why: {top} ranks first" in done.stdout
    pd.testing.assert_frame_equal(pd.read_parquet(remote / "assignments.parquet"),
                                  pd.read_parquet(f"{local}/assignments.parquet"))

    scored = tmp_path / "scored"
    done = subprocess.run([str(BIN / "clusterflow"), "predict", str(remote), str(data), "--out", str(scored),
                           "--blocksize", "4KB", "--dask-address", dask_deployment],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list(scored.glob("*.parquet"))) > 1  # scored by partitions on the workers
    expected = clusterflow.load_model(local).assign(table)
    got = pd.read_parquet(scored).sort_values("customer_id", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected.sort_values("customer_id").reset_index(drop=True), check_dtype=False)
