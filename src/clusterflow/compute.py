"""The Dask cluster a run computes on: a local one by default, or an existing scheduler.

Prefect tasks stay in the flow's process (so they work with or without a Prefect
server); the compute they start runs on Dask workers, which need no Prefect at all.
"""
from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import dask.array as da
import numpy as np
import psutil
from distributed import Client, Future, LocalCluster

from .algorithms import REGISTRY
from .training import CandidateResult, CandidateSpec, fit_and_score


SMALL_TABLE_ROWS = 20_000  # up to this many rows, one in-process worker of threads is the cheapest cluster
LOOPBACK = "127.0.0.1"


@contextmanager
def dask_client(address: str | None = None, n_workers: int | None = None, rows: int | None = None
                ) -> Iterator[Client]:
    """A client to ``address``, or to a new local cluster (closed on exit); see :func:`local_cluster`."""
    if address:
        with Client(address) as client:
            yield client
        return
    with local_cluster(n_workers, rows) as cluster, Client(cluster) as client:
        yield client


class StartingClient:
    """A Dask client being started in the background; :meth:`result` waits for it.

    ``start_seconds`` is how long the cluster took to start, ``waited_seconds`` how long
    callers of :meth:`result` were kept waiting for it.
    """

    def __init__(self) -> None:
        self._ready: concurrent.futures.Future = concurrent.futures.Future()
        self.start_seconds: float | None = None
        self.waited_seconds = 0.0

    def result(self) -> Client:
        started = time.perf_counter()
        try:
            return self._ready.result()
        finally:
            self.waited_seconds += time.perf_counter() - started

    def timings(self) -> dict[str, float]:
        return {"dask_start": self.start_seconds or 0.0, "dask_wait": self.waited_seconds}


@contextmanager
def starting_dask_client(address: str | None = None, rows: int | None = None) -> Iterator[StartingClient]:
    """:func:`dask_client`, started in the background: yields at once, so the cluster starts
    while the caller works (reads, featurizes); closed on exit."""
    starting = StartingClient()
    done = threading.Event()

    def hold() -> None:
        started = time.perf_counter()
        try:
            with dask_client(address, rows=rows) as client:
                starting.start_seconds = time.perf_counter() - started
                starting._ready.set_result(client)
                done.wait()
        except BaseException as exc:  # reported to whoever waits for the client
            if not starting._ready.done():
                starting._ready.set_exception(exc)

    holder = threading.Thread(target=hold, name="dask-cluster", daemon=True)
    holder.start()
    try:
        yield starting
    finally:
        done.set()
        holder.join()


def local_cluster(n_workers: int | None = None, rows: int | None = None) -> LocalCluster:
    """A private local cluster: nothing listens beyond 127.0.0.1.

    Up to :data:`SMALL_TABLE_ROWS` rows it is one worker of threads in this process
    (starts in ~0.2 s, no network listener but the dashboard's, scattered data is not
    copied); larger tables get one single-threaded worker process per core, and each fit
    limits its BLAS/OpenMP threads so candidates run side by side without oversubscribing.
    Worker processes exit when this process dies (their nannies watch it).
    """
    cores = max(1, os.cpu_count() or 1)
    common = dict(dashboard_address=f"{LOOPBACK}:0", silence_logs=logging.WARNING)
    if rows is not None and rows <= SMALL_TABLE_ROWS and n_workers is None:
        return LocalCluster(n_workers=1, threads_per_worker=cores, processes=False, **common)
    return LocalCluster(n_workers=n_workers or cores, threads_per_worker=1, processes=True, host=LOOPBACK, **common)


def featurizing_uses_dask(roles: dict[str, str], rows: int = 0) -> bool:
    """True when featurizing needs the cluster ready first: image columns are read on it, and
    the texts of tables with ``PARALLEL_MIN_TEXTS`` rows or more are embedded on it."""
    from .modalities.text import PARALLEL_MIN_TEXTS

    return "image" in roles.values() or ("text" in roles.values() and rows >= PARALLEL_MIN_TEXTS)


def threads_per_fit(client: Client) -> int:
    """BLAS threads each fit may use: the machine's cores shared among the worker threads."""
    workers = client.scheduler_info()["workers"].values()
    threads = sum(w["nthreads"] for w in workers) or 1
    return max(1, (os.cpu_count() or 1) // threads) if len(workers) else 1


def broadcast_budget(client: Client) -> int:
    """The largest train matrix sent whole to every worker: a quarter of the smallest worker's memory."""
    limits = [w.get("memory_limit") or 0 for w in client.scheduler_info()["workers"].values()]
    smallest = min((m for m in limits if m), default=psutil.virtual_memory().total)
    return smallest // 4


@dataclass
class SharedMatrices:
    """The train and validation matrices, sent to every worker once (by reference after).

    A train matrix larger than the broadcast budget is instead spread over the workers
    in row chunks (``spread_train``) for the algorithms that can fit it there (dask-ml's
    k-means); the others get a seeded sample of it that fits the budget (``train``), whose
    positions in the spread matrix are ``train_sample``: every candidate tops its scoring
    rows up from those rows, so all are scored, and compared, on the same rows.
    """

    train: Future
    validation: Future
    threads: int
    train_rows: int
    spread_train: da.Array | None = None
    train_sample: np.ndarray | None = None

    @classmethod
    def scatter(cls, client: Client, train: np.ndarray, validation: np.ndarray, *,
                max_broadcast_bytes: int | None = None, seed: int = 0) -> "SharedMatrices":
        budget = max_broadcast_bytes or broadcast_budget(client)
        spread = sample = None
        if train.nbytes > budget:
            rows = max(100, budget // max(train[0].nbytes, 1))
            spread = client.persist(da.from_array(train, chunks=(rows, -1)))
            sample = np.sort(np.random.default_rng(seed).choice(len(train), min(rows, len(train)), replace=False))
            train_whole = train
            train = train_whole[sample]
        train_f, validation_f = client.scatter([train, validation], broadcast=True, hash=False)
        return cls(train_f, validation_f, threads_per_fit(client), len(train) if spread is None else len(train_whole),
                   spread, sample)


def fit_and_score_shared(spec: CandidateSpec, shared: SharedMatrices, silhouette_sample: int) -> CandidateResult:
    """Fit and score one candidate on the Dask workers holding ``shared``; failures come back as ``error``.

    A train matrix spread over the workers is fitted there by the algorithms that can
    (dask-ml's k-means); otherwise one worker fits the broadcast matrix.
    """
    if shared.spread_train is not None and REGISTRY[spec.algorithm].build_distributed is not None:
        return fit_and_score(spec, shared.spread_train, shared.validation.result(),
                             silhouette_sample=silhouette_sample, train_sample=shared.train_sample)
    return shared.train.client.submit(
        fit_and_score, spec, shared.train, shared.validation, silhouette_sample=silhouette_sample,
        threads=shared.threads, train_rows=shared.train_rows, train_sample=shared.train_sample, pure=False,
        key=f"fit-{spec.model_id}-{id(shared)}").result()
