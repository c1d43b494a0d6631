"""A fitted featurizer (and reducer) applied over the Dask workers, partition by partition.

The featurizer is fitted in the run's process on the train rows (it must see them all);
rows it only transforms -- the validation rows -- are cut into partitions and transformed
on the workers, where text is embedded and images are read. Each worker unpickles the fitted
featurizer once and keeps its text model for every later partition; the run's process
gathers only the reduced matrix (a few dozen columns, not the hundreds of an embedding).

Every transform here is row by row, so the result equals the in-process transform of the
same rows (texts embedded in other batches differ by float rounding only).
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import pickle
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd

# The rows a transform must have before the workers pay for their overhead (shipping the fitted
# featurizer, loading a text model per worker): text and images cost milliseconds per row, the
# other modalities microseconds.
COSTLY_ROLES = ("text", "image")
COSTLY_MIN_ROWS = 2_000
CHEAP_MIN_ROWS = 200_000
MIN_PARTITION_ROWS = 256
PARTITIONS_PER_THREAD = 4  # a few partitions per worker thread, so the workers finish together

# The cores a featurizer may use for its own threads (text encoders, BLAS) while a partition
# is transformed on a worker; None outside this module's worker tasks.
WORKER_THREADS: contextvars.ContextVar[int | None] = contextvars.ContextVar("worker_threads", default=None)

_LOADED: OrderedDict[str, tuple] = OrderedDict()  # per worker process: digest -> (featurizer, reducer, lock)
_LOADED_LOCK = threading.Lock()
_KEEP_LOADED = 2


def worth_the_workers(client, roles: dict[str, str], rows: int) -> bool:
    """True when ``rows`` rows are transformed faster on ``client``'s worker processes than here."""
    if client is None or not _worker_processes(client):
        return False
    costly = any(role in COSTLY_ROLES for role in roles.values())
    return rows >= (COSTLY_MIN_ROWS if costly else CHEAP_MIN_ROWS)


def _worker_processes(client) -> int:
    """Workers that run in their own processes (an in-process worker shares this process's memory and cores)."""
    return sum(1 for address in client.scheduler_info()["workers"] if not address.startswith("inproc://"))


def transform_on_workers(client, featurizer, reducer, frame: pd.DataFrame) -> np.ndarray:
    """``reducer.transform(featurizer.transform(frame))`` computed on ``client``'s workers in row partitions.

    Text embedders' counts of texts encoded and cache hits on the workers are added to
    ``featurizer``'s, so the manifest says what was embedded wherever it ran.
    """
    threads = threads_per_task(client)
    size = max(MIN_PARTITION_ROWS, -(-len(frame) // (PARTITIONS_PER_THREAD * _worker_threads(client))))
    blob = pickle.dumps((featurizer, reducer))
    digest = hashlib.sha256(blob).hexdigest()
    [fitted] = client.scatter([blob], broadcast=True, hash=False)
    parts = client.scatter([frame.iloc[start:start + size] for start in range(0, len(frame), size)])
    futures = client.map(transform_partition, parts, fitted=fitted, digest=digest, threads=threads, pure=False)
    results = client.gather(futures)
    _add_text_counts(featurizer, [counts for _, counts in results])
    return np.vstack([matrix for matrix, _ in results])


def threads_per_task(client) -> int:
    """The cores one worker thread may use: the machine's cores shared among the cluster's worker threads."""
    return max(1, (os.cpu_count() or 1) // _worker_threads(client))


def _worker_threads(client) -> int:
    return max(1, sum(w["nthreads"] for w in client.scheduler_info()["workers"].values()))


@contextlib.contextmanager
def worker_share_of_cores(threads: int):
    """On a worker: text encoders and BLAS use ``threads`` threads inside this block, not every core."""
    from threadpoolctl import threadpool_limits

    token = WORKER_THREADS.set(threads)
    try:
        with threadpool_limits(threads):
            yield
    finally:
        WORKER_THREADS.reset(token)


def transform_partition(part: pd.DataFrame, fitted: bytes, digest: str, threads: int) -> tuple[np.ndarray, list]:
    """On a worker: one partition's reduced features, and its text embedders' counts (encoded, cache hits, seconds)."""
    featurizer, reducer, lock = _loaded(fitted, digest)
    with lock, worker_share_of_cores(threads):  # the counters are read before and after this partition alone
        embedders = _text_embedders(featurizer)
        before = [_counts(e) for e in embedders]
        features = featurizer.transform(part)
        reduced = features if reducer == "passthrough" else reducer.transform(features)
        counts = [tuple(a - b for a, b in zip(_counts(e), start)) for e, start in zip(embedders, before)]
    return np.ascontiguousarray(reduced), counts


def _loaded(fitted: bytes, digest: str) -> tuple:
    """The fitted pieces of ``digest``, unpickled once per worker process (the last few kept)."""
    with _LOADED_LOCK:
        if digest not in _LOADED:
            featurizer, reducer = pickle.loads(fitted)
            _LOADED[digest] = (featurizer, reducer, threading.Lock())
            while len(_LOADED) > _KEEP_LOADED:
                _LOADED.popitem(last=False)
        _LOADED.move_to_end(digest)
        return _LOADED[digest]


def _text_embedders(featurizer) -> list:
    from .modalities.text import SentenceEmbedder

    blocks = [block for _, block, _ in getattr(featurizer, "transformers_", [])]
    steps = [step for block in blocks for step in getattr(block, "named_steps", {}).values()]
    return [step for step in steps if isinstance(step, SentenceEmbedder)]


def _counts(embedder) -> tuple[int, int, float]:
    return embedder.n_texts_encoded_, embedder.n_cache_hits_, embedder.encode_seconds_


def _add_text_counts(featurizer, partitions: list[list[tuple]]) -> None:
    for number, embedder in enumerate(_text_embedders(featurizer)):
        embedder.n_texts_encoded_ += sum(counts[number][0] for counts in partitions)
        embedder.n_cache_hits_ += sum(counts[number][1] for counts in partitions)
        embedder.encode_seconds_ += sum(counts[number][2] for counts in partitions)
