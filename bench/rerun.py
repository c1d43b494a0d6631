"""Benchmark: what a rerun costs next to the run it extends, and how fast an event starts a run.

1. A 100k-row customer table with planted segments is clustered (every algorithm, the
   default cluster counts), then rerun with 4 new cluster counts, for every k-taking
   algorithm and for one model. Both share one Dask cluster, so its start-up is not counted.
2. A local Prefect server and `clusterflow serve`; `clusterflow notify` emits
   `clusterflow.data.arrived` for a small table, and the latency from the event to the
   triggered run's creation and start is read back from the API.

    python bench/rerun.py [--rows 100000] [--events 3]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from deployments.local_server import local_prefect_server, stop_process_group

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("clusterflow"))


def bench_rerun(rows: int, folder: Path) -> None:
    from distributed import LocalCluster

    from clusterflow.samples import customers
    from clusterflow.run_folder import RunFolder
    from flows.cluster import cluster
    from flows.rerun import rerun

    data = folder / "customers.csv"
    customers(rows, seed=1).drop(columns="segment").to_csv(data, index=False)
    with LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0") as dask:
        started = time.perf_counter()
        run = cluster(data=str(data), out=str(folder / "run"), dask_address=dask.scheduler_address)
        original = time.perf_counter() - started
        manifest = RunFolder(run).manifest()
        existing = set(manifest.k_values)
        new_k = [k for k in range(3, 40) if k not in existing][:4]
        started = time.perf_counter()
        rerun(run=run, k=new_k, dask_address=dask.scheduler_address)
        every = time.perf_counter() - started
        one_k = [k for k in range(3, 60) if k not in existing and k not in new_k][:4]
        started = time.perf_counter()
        rerun(run=run, k=one_k, model=f"kmeans-k{manifest.k_values[0]}", dask_address=dask.scheduler_address)
        one = time.perf_counter() - started
    candidates = len(manifest.models) + len(manifest.failed_models)
    print(f"\n{rows:,} rows; original run: {candidates} candidates ({', '.join(manifest.algorithms)}; "
          f"k {manifest.k_values})")
    print(f"  original run            {original:7.1f} s")
    print(f"  rerun, every algorithm  {every:7.1f} s  ({every / original:.0%} of the run; k {new_k})")
    print(f"  rerun, one model        {one:7.1f} s  ({one / original:.0%} of the run; kmeans, k {one_k})")


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)
    return value


def bench_event_latency(events: int, folder: Path, api: str, env: dict, poll_seconds: int) -> None:
    import httpx

    from clusterflow.samples import customers

    client_env = {**env, "PREFECT_RUNNER_POLL_FREQUENCY": str(poll_seconds)}
    serving = None
    try:
        serving = subprocess.Popen([CLI, "serve", "--runs-root", str(folder / "runs")], cwd=REPO, env=client_env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _wait(lambda: httpx.post(f"{api}/automations/filter", json={}).json(), 120, "serve registration")
        created, began = [], []
        for i in range(events):
            data = folder / f"shop-{i}.csv"
            customers(300, seed=i).drop(columns="segment").to_csv(data, index=False)
            subprocess.run([CLI, "notify", str(data), "--k", "3", "--algorithms", "kmeans"], env=client_env,
                           check=True, capture_output=True)
            run = _wait(lambda: _run_on(httpx, api, str(data), started=True), 300, "triggered run start")
            emitted = _time(_event_on(httpx, api, str(data))["occurred"])
            created.append((_time(run["created"]) - emitted).total_seconds())
            began.append((_time(run["start_time"]) - emitted).total_seconds())
            _wait(lambda: _run_on(httpx, api, str(data), finished=True), 300, "triggered run end")
        print(f"event -> run created: {', '.join(f'{s:.1f}' for s in created)} s")
        print(f"event -> run started: {', '.join(f'{s:.1f}' for s in began)} s "
              f"(runner polls every {poll_seconds} s)")
    finally:
        if serving is not None:
            stop_process_group(serving)


def _run_on(httpx, api: str, data: str, started: bool = False, finished: bool = False) -> dict | None:
    for run in httpx.post(f"{api}/flow_runs/filter", json={}).json():
        if run["parameters"].get("data") != data:
            continue
        if (started and run["start_time"]) or (finished and run["state_type"] in {"COMPLETED", "FAILED", "CRASHED"}):
            return run
    return None


def _event_on(httpx, api: str, data: str) -> dict:
    events = httpx.post(f"{api}/events/filter", json={"filter": {"event": {"name": ["clusterflow.data.arrived"]}},
                                                      "limit": 50}).json()["events"]
    return next(e for e in events if e["payload"].get("data_uri") == data)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=3)
    parser.add_argument("--poll-seconds", type=int, default=10, help="the runner's poll interval (Prefect's default)")
    parser.add_argument("--part", choices=("all", "rerun", "events"), default="all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clusterflow-bench-") as tmp:
        started = time.perf_counter()
        with local_prefect_server(Path(tmp) / "prefect-home") as server:
            print(f"server answered /api/health after {time.perf_counter() - started:.1f} s")
            os.environ.update(server.client_env)  # this process runs its flows against the same server
            if args.part in ("all", "rerun"):
                bench_rerun(args.rows, Path(tmp))
            if args.part in ("all", "events"):
                bench_event_latency(args.events, Path(tmp), server.api, server.client_env, args.poll_seconds)


if __name__ == "__main__":
    main()
