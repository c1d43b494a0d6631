"""A table larger than the flow's memory: `clusterflow run` on a Parquet dataset under an address-space limit.

Generates a customer table with four planted segments as a Parquet dataset whose in-memory
(pandas) size is at least ``--times`` (default 3) times the memory the flow process may use,
then runs the installed `clusterflow run` on it in a subprocess that may use ``--memory-gb`` of
resident memory: killed when a 0.1 s poll sees more, its peak checked afterwards with the kernel's
exact counter (``ru_maxrss``), and capped hard with ``resource.setrlimit(RLIMIT_AS)`` (an
address-space cap alone cannot be that low: importing torch, Prefect and Dask reserves ~2.5 GB of
address space for ~0.7 GB resident). The Dask scheduler and workers (the `dask` command line) and
the Prefect server are started here, not by the limited process, so they are not bounded: only
the flow's process is. Prints rows, sizes, the flow's peak memory and the times.

    .venv/bin/python bench/large_table.py                 # 1.5 GiB allowed, table >= 4.5 GiB in memory
    .venv/bin/python bench/large_table.py --memory-gb 2 --times 3

Timings on a shared 2-core machine are noisy: read them as orders of magnitude.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deployments.local_server import local_prefect_server, stop_process_group  # noqa: E402

BIN = Path(sys.executable).parent
ROWS_PER_FILE = 1_000_000
WIDTH = 60  # numeric columns: a wide table keeps the row count (and the generation time) down
CHANNELS = np.array(["app", "store", "web", "phone"])


def customer_chunk(start: int, rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows ``start..start+rows`` of a table with four planted segments (vectorised), and their segments
    (no id column: assignments carry the row number)."""
    centres = np.random.default_rng(seed).normal(0, 1.5, size=(4, WIDTH))
    rng = np.random.default_rng([seed, start])
    segment = rng.choice(4, size=rows, p=[0.35, 0.3, 0.15, 0.2])
    numbers = centres[segment] + rng.normal(size=(rows, WIDTH))
    frame = pd.DataFrame(numbers, columns=[f"x{j:02d}" for j in range(WIDTH)])
    other = rng.random(rows) < 0.05  # a few customers use another segment's channel
    frame["channel"] = pd.Series(np.where(other, rng.integers(0, 4, rows), segment)).map(dict(enumerate(CHANNELS)))
    frame.loc[rng.random(rows) < 0.02, "x00"] = np.nan
    return frame, segment


def write_dataset(folder: Path, min_memory_bytes: int, seed: int) -> dict:
    """Write Parquet files until the table's pandas size reaches ``min_memory_bytes``; keep the segments.

    One chunk is generated and its file copied (generating random wide rows is the slow part on
    a shared machine): the table repeats its planted rows, which changes nothing the run measures.
    """
    folder.mkdir(parents=True)
    frame, segment = customer_chunk(0, ROWS_PER_FILE, seed)
    chunk_memory = int(frame.memory_usage(deep=True).sum())
    first = folder / "part-0000.parquet"
    frame.to_parquet(first, index=False, row_group_size=100_000)
    files = max(1, -(-min_memory_bytes // chunk_memory))
    for number in range(1, files):
        shutil.copyfile(first, folder / f"part-{number:04d}.parquet")
    disk = sum(p.stat().st_size for p in folder.glob("*.parquet"))
    return {"rows": files * len(frame), "memory_bytes": files * chunk_memory, "disk_bytes": disk,
            "segments": np.tile(segment.astype(np.int8), files)}


def dask_deployment(stack: ExitStack, folder: Path, workers: int) -> tuple[str, list[int]]:
    """`dask scheduler` and ``workers`` `dask worker` processes on 127.0.0.1 (no memory limit); returns the
    scheduler's address and the worker commands' process ids."""
    from distributed import Client

    scheduler_file = folder / "scheduler.json"
    worker_pids = []

    def start(*args: str) -> None:
        log = stack.enter_context(open(folder / f"dask-{args[0]}-{time.monotonic_ns()}.log", "wb"))
        process = subprocess.Popen([str(BIN / "dask"), *args], stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        stack.callback(stop_process_group, process)
        if args[0] == "worker":
            worker_pids.append(process.pid)

    start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
          str(scheduler_file))
    for _ in range(workers):
        start("worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1", "--nthreads", "1",
              "--no-dashboard", "--memory-limit", "4GB")
    deadline = time.monotonic() + 120
    while not scheduler_file.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the Dask scheduler wrote no scheduler file")
        time.sleep(0.2)
    address = json.loads(scheduler_file.read_text())["address"]
    with Client(address, timeout=60) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, worker_pids


def bytes_read(pids: list[int]) -> int:
    """Bytes the processes ``pids`` and their children have read so far (``read_chars``: page-cache hits count)."""
    import psutil

    total = 0
    for pid in pids:
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            try:
                total += process.io_counters().read_chars
            except psutil.NoSuchProcess:
                pass
    return total


def limited(address_space_bytes: int):
    """A preexec_fn: the child's address space is at most ``address_space_bytes`` (its children inherit it)."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))
    return apply


def run_watched(argv: list[str], env: dict, memory_bytes: int, address_space_bytes: int
                ) -> tuple[int, str, int, int]:
    """Run ``argv`` under the address-space cap, killing it if its resident memory passes ``memory_bytes``.

    Returns the exit code, the output's tail, the kernel's peak resident set of the process
    (``ru_maxrss``, exact, unlike the 0.1 s polls that enforce the limit) and the bytes it read
    (its last 0.1 s poll of ``read_chars``).
    """
    import psutil

    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=limited(address_space_bytes))
    watched = psutil.Process(process.pid)
    read = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)  # reaps it with its resource usage
        if pid:
            break
        try:
            if watched.memory_info().rss > memory_bytes:
                process.kill()
            read = watched.io_counters().read_chars
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.1)
    process.returncode = code = os.waitstatus_to_exitcode(status)
    peak = usage.ru_maxrss * 1024
    log.seek(0)
    return code, log.read()[-6000:], peak, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memory-gb", type=float, default=1.5, help="resident memory the flow process may use")
    parser.add_argument("--address-space-gb", type=float, default=4.5,
                        help="hard address-space cap of the flow process (its imports alone reserve ~2.5 GB)")
    parser.add_argument("--times", type=float, default=3.0, help="table size in memory / the memory allowed")
    parser.add_argument("--sample-rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    limit = int(args.memory_gb * 2**30)

    with tempfile.TemporaryDirectory(prefix="clusterflow-large-") as tmp, ExitStack() as stack:
        tmp = Path(tmp)
        started = time.perf_counter()
        table = write_dataset(tmp / "customers", int(args.times * limit), args.seed)
        generated = time.perf_counter() - started
        print(f"table: {table['rows']:,} rows, {table['memory_bytes'] / 2**30:.2f} GiB in pandas "
              f"({table['memory_bytes'] / limit:.1f}x the flow's {args.memory_gb:g} GiB), "
              f"{table['disk_bytes'] / 2**30:.2f} GiB of Parquet; generated in {generated:.0f} s")

        server = stack.enter_context(local_prefect_server(tmp / "prefect-home"))
        address, workers = dask_deployment(stack, tmp, args.workers)
        env = {**server.client_env, "HF_HUB_OFFLINE": "1", "MALLOC_ARENA_MAX": "2"}
        argv = [str(BIN / "clusterflow"), "run", str(tmp / "customers"), "--out", str(tmp / "run"),
                "--sample-rows", str(args.sample_rows), "--algorithms", "kmeans", "--k", "3", "4", "5",
                "--seed", str(args.seed), "--dask-address", address]
        workers_read = bytes_read(workers)
        started = time.perf_counter()
        load = os.getloadavg()[0]
        code, output, peak, flow_read = run_watched(argv, env, limit, int(args.address_space_gb * 2**30))
        seconds = time.perf_counter() - started
        workers_read = bytes_read(workers) - workers_read
        print(f"reads: the flow process {flow_read / 2**30:.2f} GiB, the workers {workers_read / 2**30:.2f} GiB: "
              f"{(flow_read + workers_read) / table['disk_bytes']:.2f}x the table's {table['disk_bytes'] / 2**30:.2f} "
              f"GiB of Parquet (file reads of every kind, imports included); load average {load:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end")
        if code != 0:
            print(output)
            raise SystemExit(f"clusterflow run failed (exit {code}; peak RSS {peak / 2**30:.2f} GiB)")
        report(tmp / "run", table, seconds, peak, limit)


def report(run: Path, table: dict, seconds: float, peak: int, limit: int) -> None:
    """Print the run's figures and check that every row was assigned, against the planted segments."""
    from sklearn.metrics import adjusted_rand_score

    sys.path.insert(0, str(ROOT / "src"))
    from clusterflow.run_folder import RunFolder

    folder = RunFolder(str(run))
    manifest = folder.manifest()
    parts = folder.assignment_parts(manifest)
    clusters = np.concatenate([pd.read_parquet(io.BytesIO(folder.read(p, manifest)), columns=["cluster"])["cluster"]
                               .to_numpy() for p in parts])
    print(f"run: {seconds:.0f} s wall, {table['rows'] / seconds:,.0f} rows/s end to end; flow process peak RSS "
          f"{peak / 2**30:.2f} GiB (allowed {limit / 2**30:.2f} "
          f"GiB; the table is {table['memory_bytes'] / peak:.1f}x the peak)")
    print("stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in manifest.timings_seconds.items()))
    print(f"models trained on {manifest.sample.rows:,} of {manifest.sample.of_rows:,} rows; top {manifest.top_model}")
    print(f"assignments: {len(clusters):,} rows in {len(parts)} files (every row: {len(clusters) == table['rows']}); "
          f"ARI vs planted segments {adjusted_rand_score(table['segments'], clusters):.3f}")


if __name__ == "__main__":
    main()
