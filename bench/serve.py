"""Load test of `clusterflow serve-model` on 127.0.0.1: requests/s and latency, and a promotion mid-load.

Publishes two runs of a numeric + categorical customer table (k-means, k=4 and k=5) with the
`clusterflow` command, promotes the first, and serves the dataset's promoted model (a promotion from this process swaps it). An asyncio
client (aiohttp, a fixed number of requests, a bounded number in flight, a time limit) then
sends single-row and 100-row requests, and single-row requests again while the second model is
promoted. Targets: >= 300 single-row requests/s with p99 <= 50 ms; no failed request during the
swap. The client runs on the same two cores as the server: its CPU time counts against it
(aiohttp's is about 0.4 ms per request here; httpx's async client took 3 ms, more than the
service, and bounded what was measured). The load average is printed with the figures.

    .venv/bin/python bench/serve.py [--requests 3000] [--concurrency 16]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clusterflow.promotion import promote  # noqa: E402
from clusterflow.samples import customers  # noqa: E402
from deployments.local_server import free_port, stop_process_group  # noqa: E402

CLI = str(Path(sys.executable).with_name("clusterflow"))


def publish_runs(root: Path) -> list[str]:
    """Two runs of the `customers` dataset (k=4 and k=5), published by the command line."""
    data = root / "customers.csv"
    customers(3000, seed=21).drop(columns="segment").to_csv(data, index=False)
    runs = []
    for k in (4, 5):
        out = root / f"customers-k{k}"
        subprocess.run([CLI, "run", str(data), "--k", str(k), "--algorithms", "kmeans", "--out", str(out)],
                       check=True, capture_output=True, timeout=600)
        runs.append(str(out))
    return runs


def start_service(root: Path, port: int) -> subprocess.Popen:
    log = open(root / "serve-model.log", "wb")
    process = subprocess.Popen([CLI, "serve-model", "--dataset", "customers", "--runs-root", str(root),
                                "--port", str(port), "--poll-seconds", "0.5"],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    stop_process_group(process)
    raise RuntimeError((root / "serve-model.log").read_text()[-3000:])


async def drive(url: str, bodies: list, requests: int, concurrency: int, max_seconds: float) -> dict:
    """Send ``requests`` POST /predict (cycling through ``bodies``), ``concurrency`` at a time."""
    latencies, failures, models = [], 0, []
    sent = 0
    payloads = [orjson.dumps(body) for body in bodies]
    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=url, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as client:
        started = time.perf_counter()

        async def worker():
            nonlocal sent, failures
            while sent < requests and time.perf_counter() - started < max_seconds:
                payload = payloads[sent % len(payloads)]
                sent += 1
                t0 = time.perf_counter()
                try:
                    async with client.post("/predict", data=payload, headers=headers) as response:
                        answer = await response.read()
                        ok = response.status == 200
                    if ok:
                        models.append(orjson.loads(answer)["model"])
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok = False
                latencies.append(time.perf_counter() - t0)
                failures += not ok

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"requests": len(latencies), "failed": failures, "per_second": len(latencies) / wall,
            "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "models": models}


def promote_later(run: str, root: Path, delay: float) -> threading.Thread:
    """Promote ``run``'s kmeans-k5 after ``delay`` seconds, from a thread (as a pipeline would)."""
    def later():
        time.sleep(delay)
        promote(run, "kmeans-k5", runs_root=str(root), dataset="customers")

    thread = threading.Thread(target=later)
    thread.start()
    return thread


def server_cpu_seconds(process: subprocess.Popen) -> float:
    """CPU seconds used so far by the service (the process and its children)."""
    parent = psutil.Process(process.pid)
    return sum(sum(p.cpu_times()[:2]) for p in [parent, *parent.children(recursive=True)])


def measured(process: subprocess.Popen, url: str, bodies: list, requests: int, concurrency: int,
             seconds: float) -> dict:
    cpu = server_cpu_seconds(process)
    result = asyncio.run(drive(url, bodies, requests, concurrency, seconds))
    result["per_server_cpu_second"] = result["requests"] / max(server_cpu_seconds(process) - cpu, 1e-9)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30, help="time limit of each phase")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    root = Path(tempfile.mkdtemp(prefix="clusterflow-serve-bench-"))
    print(f"publishing two runs under {root} ...", flush=True)
    runs = publish_runs(root)
    subprocess.run([CLI, "promote", runs[0], "kmeans-k4", "--runs-root", str(root), "--dataset", "customers"],
                   check=True, capture_output=True)
    table = customers(2000, seed=99).drop(columns="segment")
    records = table.replace({np.nan: None}).to_dict("records")
    single = [[r] for r in records]
    hundred = [records[i:i + 100] for i in range(0, len(records), 100)]
    port = free_port()
    process = start_service(root, port)
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(drive(url, single, 300, args.concurrency, args.seconds))  # warm up
        load_at_start = os.getloadavg()
        phases = {
            "1 row": measured(process, url, single, args.requests, args.concurrency, args.seconds),
            "100 rows": measured(process, url, hundred, max(args.requests // 10, 50), 4, args.seconds),
        }
        promoter = promote_later(runs[1], root, delay=3)
        phases["1 row, swap"] = measured(process, url, single, args.requests * 2, args.concurrency, args.seconds)
        promoter.join()
    finally:
        stop_process_group(process)
    print(f"\nload average (1, 5, 15 min) when the load started: {', '.join(f'{x:.2f}' for x in load_at_start)}; "
          f"at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    print(f"{'phase':<12} {'requests':>8} {'failed':>6} {'req/s':>8} {'rows/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'req per server CPU-s':>21}")
    for name, result in phases.items():
        rows = 100 if name == "100 rows" else 1
        print(f"{name:<12} {result['requests']:>8} {result['failed']:>6} {result['per_second']:>8.0f} "
              f"{result['per_second'] * rows:>8.0f} {result['p50']:>7.1f} {result['p99']:>7.1f} "
              f"{result['per_server_cpu_second']:>21.0f}")
    swap = phases["1 row, swap"]["models"]
    switched = next((i for i, m in enumerate(swap) if m == "kmeans-k5"), None)
    print(f"\nswap: {swap.count('kmeans-k4')} answers by kmeans-k4, then {swap.count('kmeans-k5')} by kmeans-k5 "
          f"(first at answer {switched}); answers by the old model after the first by the new: "
          f"{sum(m == 'kmeans-k4' for m in swap[switched:]) if switched is not None else 'n/a'}")
    single_row = phases["1 row"]
    met = single_row["per_second"] >= 300 and single_row["p99"] <= 50 and phases["1 row, swap"]["failed"] == 0
    print(f"targets (>= 300 req/s, p99 <= 50 ms, no failure in the swap): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
