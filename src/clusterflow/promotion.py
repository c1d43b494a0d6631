"""The promoted model of a dataset: a small pointer object, replaced with one write.

``<runs root>/datasets/<dataset>/promoted.json`` names the run and the model that
``predict`` uses when it is given a dataset instead of a model. It is written whole (one
PUT on S3, a rename elsewhere), so a reader sees the old pointer or the new one, never a mix.
Writers take the dataset's lock (``datasets/<dataset>/lock.json``, :func:`promotion_lock`):
a promotion reads the pointer before it writes the next one (``next_cluster_id`` only grows),
and a recluster compares its run with the promoted model it will replace.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import posixpath
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Iterator

import fsspec

from .errors import ConcurrentChangeError, InputValidationError, Problem, RunNotFoundError
from .run_folder import LABELS_FILE, PROMOTED, SCHEMA_FILE, Manifest, RunFolder, RunLock, model_file, model_folder
from .runs import dataset_name
from .storage import write_whole


@dataclass(frozen=True)
class Promotion:
    """Which model of which run serves a dataset, and why.

    ``next_cluster_id`` is the first cluster id never handed out for this dataset:
    clusters that appear later get fresh ids, so a vanished cluster's id is never reused.
    """

    dataset: str
    run_uri: str
    model_id: str
    silhouette: float | None
    clusters: list[int]
    next_cluster_id: int
    reasons: list[str] = field(default_factory=list)
    promoted_at: str = ""

    @property
    def model_uri(self) -> str:
        return f"{self.run_uri.rstrip('/')}/{model_folder(self.model_id)}"


def runs_root_of(run_uri: str) -> str:
    """The folder that holds a run (and its ``datasets/`` pointers)."""
    return run_uri.rstrip("/").rsplit("/", 1)[0] if "/" in run_uri.rstrip("/") else "."


PROMOTION_WAIT_SECONDS = 600  # how long `promote` waits for another promotion (or a recluster's comparison)


def dataset_folder(runs_root: str, dataset: str) -> str:
    """The folder of a dataset's promotion pointer and its lock."""
    return posixpath.join(runs_root.rstrip("/"), "datasets", dataset)


def pointer_uri(runs_root: str, dataset: str) -> str:
    return posixpath.join(dataset_folder(runs_root, dataset), PROMOTED)


@contextmanager
def promotion_lock(runs_root: str, dataset: str, purpose: str, storage_options: dict | None = None,
                   wait: float = PROMOTION_WAIT_SECONDS) -> Iterator[RunLock]:
    """Hold the dataset's promotion lock (one promotion at a time), waiting up to ``wait`` seconds
    for another holder to finish."""
    with RunFolder(dataset_folder(runs_root, dataset), storage_options).locked(purpose, wait) as lock:
        yield lock


def read_promoted(runs_root: str, dataset: str, storage_options: dict | None = None) -> Promotion | None:
    """The dataset's promotion, or None when no model was ever promoted for it."""
    fs, path = fsspec.core.url_to_fs(pointer_uri(runs_root, dataset), **(storage_options or {}))
    fs.invalidate_cache()
    if not fs.exists(path):
        return None
    return Promotion(**json.loads(fs.cat_file(path)))


def promote(run_uri: str, model_id: str, *, runs_root: str | None = None, dataset: str | None = None,
            reasons: list[str] | None = None, storage_options: dict | None = None,
            lock: RunLock | None = None) -> Promotion:
    """Make ``model_id`` of the published run at ``run_uri`` its dataset's promoted model.

    ``dataset`` defaults to the one the run recorded, else the name of its input file;
    ``runs_root`` to the folder that holds the run. The promotion takes the dataset's
    :func:`promotion_lock` unless the caller holds it (``lock``).
    """
    folder = RunFolder(run_uri, storage_options)
    manifest = folder.manifest()
    if model_id not in manifest.models:
        raise InputValidationError([Problem(rule=f"run {manifest.run_id} has no model {model_id!r}",
                                            hint=f"choose one of {', '.join(manifest.models)}")])
    dataset = dataset or manifest.dataset or dataset_name(manifest.input.uri)
    runs_root = runs_root or runs_root_of(run_uri)
    board = folder.leaderboard(manifest).set_index("model_id")
    silhouette = float(board.loc[model_id, "silhouette"])
    clusters = _cluster_ids(folder, manifest, model_id)
    if lock is not None and not lock.held():
        raise ConcurrentChangeError(f"{dataset}: this promotion no longer holds the dataset's lock (it expired and "
                                    "another writer took it); nothing was promoted")
    with nullcontext(lock) if lock is not None else promotion_lock(runs_root, dataset, "promote", storage_options):
        previous = read_promoted(runs_root, dataset, storage_options)
        next_id = max([previous.next_cluster_id if previous else 0, *(c + 1 for c in clusters)])
        promotion = Promotion(dataset, run_uri, model_id, None if math.isnan(silhouette) else silhouette, clusters,
                              next_id, reasons or ["promoted by hand"],
                              dt.datetime.now(dt.timezone.utc).isoformat())
        fs, path = fsspec.core.url_to_fs(pointer_uri(runs_root, dataset), **(storage_options or {}))
        write_whole(fs, path, json.dumps(asdict(promotion), indent=2).encode())
    return promotion


def _cluster_ids(folder: RunFolder, manifest: Manifest, model_id: str) -> list[int]:
    """The ids a published model reports: its clusters, through its ``labels.json`` when it has one."""
    clusters = folder.read_json(model_file(model_id, SCHEMA_FILE), manifest)["clusters"]
    labels_path = model_file(model_id, LABELS_FILE)
    labels = folder.read_json(labels_path, manifest)["labels"] if labels_path in manifest.files else {}
    return sorted(int(labels.get(str(c), c)) for c in clusters)


def promoted_model_uri(runs_root: str, dataset: str, storage_options: dict | None = None) -> str:
    """The model folder of the promoted model of ``dataset`` (load it with :func:`load_model`)."""
    promotion = read_promoted(runs_root, dataset, storage_options)
    if promotion is None:
        raise RunNotFoundError(f"no promoted model for dataset {dataset!r} under {runs_root}: "
                               f"run `clusterflow promote RUN MODEL_ID` or let a recluster promote one")
    return promotion.model_uri
