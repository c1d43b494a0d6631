"""The run folder: every file name in it, its manifest (a typed model), and how it is read and changed.

Layout, relative to the run folder (a local path or an ``s3://`` URI)::

    manifest.json                 the commit: written last; lists every file of the revision with its SHA-256
    input.parquet                 the fitted table of a saved ``Clustering`` (its manifest records the SHA-256)
    leaderboard.csv  assignments.parquet  report.html  recluster.json
    assignments/part-<n>.parquet  instead of assignments.parquet for a partitioned table: one file per partition
                                  (every row), written by the Dask worker that assigned it
    models/<model_id>/            model.joblib, schema.json, blueprint.json, labels.json (after a recluster)
    features/                     train.npy, validation.npy, partition.npz (the cached reduced matrices);
                                  sample.npy (a partitioned table's sampled row numbers, which the others index)
    insights/<model_id>/          per-cluster insights;  reports/<model_id>.html  (models other than the top)
    revisions/<r>-<change>/<name> the version of <name> that revision r wrote when <name> already existed
                                  (revision 0: revisions/0/<name>, kept when a later revision replaced it)
    lock.json                     present while one process changes the run

A change (a run, rerun, recluster or report) writes its files first, then commits by writing
the manifest. The first revision writes files under their own names (a folder without a
manifest is not a run). A later revision never overwrites a file the committed manifest lists:
it writes the new version under ``revisions/<r>-<change>/`` (a name unique to this attempt) and
its manifest points there; after the
commit the plain name gets a copy of the current version, for people who open the folder by
hand. Readers go through the manifest, so a process killed at any instant leaves the previous
revision readable, and what a killed change left behind is never loaded (it is not listed, or
its checksum differs).
"""
from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import hmac
import io
import json
import logging
import os
import posixpath
import signal
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Literal

import fsspec
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import (ConcurrentChangeError, InputValidationError, IntegrityError, Problem, RunExistsError,
                     RunLockedError, RunNotFoundError)
from .partition import Partition
from .storage import (create_new, delete_if_unchanged, etag_of, frame_to_parquet_bytes, replace_if_unchanged,
                      write_whole)

SCHEMA_VERSION = 2

DEFAULT_RUNS_ROOT = "clusterflow-runs"  # where runs go without --out
MANIFEST = "manifest.json"
LEADERBOARD = "leaderboard.csv"
ASSIGNMENTS = "assignments.parquet"
REPORT = "report.html"
RECLUSTER = "recluster.json"
LOCK = "lock.json"
FEATURES_TRAIN = "features/train.npy"
FEATURES_VALIDATION = "features/validation.npy"
FEATURES_PARTITION = "features/partition.npz"
FEATURES_SAMPLE = "features/sample.npy"
SCORING_LABELS = "features/scoring_labels.parquet"  # every model's labels of the scoring rows, a column each
SCORING_ROW = "scoring_row"  # its column of the rows' keys (clusterflow.training.scoring_rows)
ASSIGNMENTS_DATASET = "assignments"
MODEL_FILE, SCHEMA_FILE, LABELS_FILE = "model.joblib", "schema.json", "labels.json"
BLUEPRINT_FILE = "blueprint.json"
INPUT_FILE = "input.parquet"  # a saved estimator's fitted table (a frame has no file of its own)
PROMOTED = "promoted.json"  # not in a run folder: <runs root>/datasets/<dataset>/promoted.json

SIGNING_KEY_ENV = "CLUSTERFLOW_SIGNING_KEY"
LOCK_SECONDS_ENV = "CLUSTERFLOW_LOCK_SECONDS"
DEFAULT_LOCK_SECONDS = 2 * 3600
LOCK_POLL_SECONDS = (0.5, 5.0)  # a writer waiting for a lock looks again after 0.5 s, then ever less often
logger = logging.getLogger(__name__)
KILL_AT_ENV = "CLUSTERFLOW_TEST_KILL_AT"


def model_folder(model_id: str) -> str:
    return f"models/{model_id}"


def model_file(model_id: str, name: str = MODEL_FILE) -> str:
    return f"{model_folder(model_id)}/{name}"


def assignments_part(number: int) -> str:
    """Partition ``number``'s file of the ``assignments/`` dataset (a partitioned table's every row)."""
    return f"{ASSIGNMENTS_DATASET}/part-{number:05d}.parquet"


def insights_folder(model_id: str) -> str:
    return f"insights/{model_id}"


def model_report(model_id: str) -> str:
    """The report of a model other than the top one (the top model's is ``report.html``)."""
    return f"reports/{model_id}.html"


def revision_file(revision: int, change: str | None, name: str) -> str:
    """Where the version of ``name`` written by one change (``change`` None: the first revision) is kept."""
    return f"revisions/{revision if change is None else f'{revision}-{change}'}/{name}"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileRecord(_Record):
    """One published file: its checksum, size, the revision (and change) that wrote it and, when
    that is not the file's own name, where this version is."""

    sha256: str
    size: int
    revision: int
    change: str | None = None
    path: str | None = None


class InputRecord(_Record):
    uri: str
    sha256: str
    rows: int
    columns: int


class PartitionRecord(_Record):
    train_rows: int
    validation_rows: int
    seed: int


class SampleRecord(_Record):
    """A partitioned table's run trained and scored on ``rows`` of its ``of_rows`` rows, drawn with ``seed``."""

    rows: int
    of_rows: int
    seed: int


class FeaturesRecord(_Record):
    featurized_width: int
    reduced_width: int
    reducer: str | None
    blocks: dict[str, dict[str, Any]]


class RerunRecord(_Record):
    at: str
    k_values: list[int]
    algorithms: list[str]
    added_models: list[str]
    failed_models: dict[str, str]
    top_model_before: str


class ReclusterRecord(_Record):
    dataset: str
    promoted: bool
    reasons: list[str]
    previous: dict[str, str] | None
    report: str


class Manifest(_Record):
    """What a run published: inputs, roles, parameters, models, scores' context and every file's checksum."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    status: Literal["written", "complete"] = "written"
    revision: int = 0
    change: str | None = None  # the change that wrote this revision (a random id; None for the first)
    created_at: str
    committed_at: str | None = None
    input: InputRecord
    roles: list[dict[str, Any]]
    dropped_columns: list[dict[str, Any]]
    columns: list[dict[str, Any]]
    id_column: str | None
    parameters: dict[str, Any]
    k_values: list[int]
    algorithms: list[str]
    partition: PartitionRecord
    sample: SampleRecord | None = None
    features: FeaturesRecord
    top_model: str
    selection: dict[str, str] | None = None  # metric, the leaderboard column it ranks by, why the top model is first
    models: list[str]
    failed_models: dict[str, str]
    timings_seconds: dict[str, float]
    versions: dict[str, str | None]
    dataset: str | None = None
    report: str | None = None
    insights: str | None = None
    model_reports: dict[str, str] = Field(default_factory=dict)
    reruns: list[RerunRecord] = Field(default_factory=list)
    recluster: ReclusterRecord | None = None
    files: dict[str, FileRecord] = Field(default_factory=dict)
    signature: str | None = None

    @property
    def role_of(self) -> dict[str, str]:
        """Column -> role."""
        return {d["column"]: d["role"] for d in self.roles}

    def next_revision(self, **changes) -> "Manifest":
        """A draft of the next revision with ``changes`` applied (not yet committed)."""
        return self.model_copy(update={**changes, "revision": self.revision + 1, "change": uuid.uuid4().hex[:8],
                                       "status": "written", "signature": None}, deep=True)

    def to_json(self) -> bytes:
        """The manifest file's bytes, signed when a signing key is set."""
        unsigned = self.model_copy(update={"signature": None})
        key = os.environ.get(SIGNING_KEY_ENV)
        signed = unsigned.model_copy(update={"signature": _sign(unsigned, key)}) if key else unsigned
        return signed.model_dump_json(indent=2).encode()


def _canonical(manifest: Manifest) -> bytes:
    return json.dumps(manifest.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def _sign(unsigned: Manifest, key: str) -> str:
    return hmac.new(key.encode(), _canonical(unsigned), hashlib.sha256).hexdigest()


def parse_manifest(raw: bytes, where: str) -> Manifest:
    """The manifest in ``raw`` (from ``where``), with its signature checked when a signing key is set."""
    try:
        document = json.loads(raw)
    except ValueError:
        raise IntegrityError(f"{where} is not valid JSON: the manifest is damaged; nothing of the run is loaded")
    version = document.get("schema_version", 1) if isinstance(document, dict) else None
    if version != SCHEMA_VERSION:
        raise IntegrityError(f"{where} has manifest schema version {version}; this clusterflow reads version "
                             f"{SCHEMA_VERSION} (with the checksums of every file): run the table again")
    try:
        manifest = Manifest.model_validate(document)
    except ValidationError as exc:
        raise IntegrityError(f"{where} is not a valid manifest: {exc}") from None
    key = os.environ.get(SIGNING_KEY_ENV)
    if key:
        if manifest.signature is None:
            raise IntegrityError(f"{where} is not signed, but {SIGNING_KEY_ENV} is set: nothing of the run is "
                                 "loaded (publish it again with the key, or unset the key to trust it)")
        expected = _sign(manifest.model_copy(update={"signature": None}), key)
        if not hmac.compare_digest(manifest.signature, expected):
            raise IntegrityError(f"{where} has a signature that does not match {SIGNING_KEY_ENV}: it was changed or "
                                 "signed with another key; nothing of the run is loaded")
    return manifest


def sample_note(record: SampleRecord) -> str:
    """What the leaderboard and the summary say about a sampled run."""
    return f"trained on a sample of {record.rows:,} of {record.of_rows:,} rows (seed {record.seed})"


def check_single_table_run(manifest: Manifest, command: str) -> None:
    """Refuse ``command`` (rerun) on a run of a partitioned table: it needs the run's whole input in memory
    and one ``assignments.parquet``, which such a run does not have."""
    if manifest.sample is None:
        return
    raise InputValidationError([Problem(
        rule=f"run {manifest.run_id} clustered the partitioned table {manifest.input.uri}: it "
             f"{sample_note(manifest.sample)} and wrote its assignments as assignments/ parts; "
             f"`clusterflow {command}` works on runs of one table file only",
        where="RUN", hint=PARTITIONED_RUN_HINTS[command])])


PARTITIONED_RUN_HINTS = {
    "rerun": "run `clusterflow run DATA --k ...` on the table again with the new cluster counts (its sample and "
             "seed give the same features)",
    "recluster": "run `clusterflow run DATA` on the Parquet dataset folder or glob, then "
                 "`clusterflow promote RUN MODEL_ID`",
}


def fault_point(name: str) -> None:
    """A test hook: the process kills itself (SIGKILL) here when ``CLUSTERFLOW_TEST_KILL_AT`` matches ``name``.

    Points: ``stage:<file name>`` after each file a change writes, ``commit:before`` and
    ``commit:after`` around the manifest write. The pattern may use shell wildcards.
    """
    pattern = os.environ.get(KILL_AT_ENV)
    if pattern and fnmatch.fnmatchcase(name, pattern):
        os.kill(os.getpid(), signal.SIGKILL)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class RunFolder:
    """A run folder at a local path or fsspec URI: its manifest, its verified files and its changes."""

    uri: str
    storage_options: dict | None = None

    def __post_init__(self) -> None:
        self.fs, self.path = fsspec.core.url_to_fs(self.uri, **(self.storage_options or {}))

    def _full(self, name: str) -> str:
        return posixpath.join(self.path, name)

    def url(self, name: str = "") -> str:
        """A URI for ``name`` inside this folder, usable by fsspec."""
        return self.uri.rstrip("/") + ("/" + name if name else "")

    def exists(self, name: str) -> bool:
        """Whether an object is at ``name`` (listed or not: use :meth:`read` for the run's files)."""
        return self.fs.exists(self._full(name))

    def write(self, name: str, data: bytes) -> None:
        """Write one object whole, outside any revision (a saved estimator's input table, before its run)."""
        write_whole(self.fs, self._full(name), data)

    def is_published(self) -> bool:
        """True when a run's manifest is there."""
        self.fs.invalidate_cache()
        return self.fs.exists(self._full(MANIFEST))

    def ensure_unpublished(self) -> None:
        """Raise :class:`RunExistsError` when the folder already holds a published run."""
        if self.is_published():
            raise RunExistsError(
                f"{self.uri} already holds a published run; it is never overwritten. "
                "Choose another --out (or leave it out for a new folder)."
            )

    def manifest(self) -> Manifest:
        """The committed manifest (signature checked when a key is set), or :class:`RunNotFoundError`."""
        if not self.is_published():
            raise RunNotFoundError(f"no published run at {self.uri} (no {MANIFEST})")
        manifest = parse_manifest(self.fs.cat_file(self._full(MANIFEST)), self.url(MANIFEST))
        if manifest.status != "complete":
            raise RunNotFoundError(f"the run at {self.uri} is not complete (status {manifest.status!r})")
        return manifest

    def read(self, name: str, manifest: Manifest) -> bytes:
        """The bytes of a file ``manifest`` lists, checked against its SHA-256 (:class:`IntegrityError` if not)."""
        record = manifest.files.get(name)
        if record is None:
            raise IntegrityError(f"{self.url(name)} is not a file of the run: {self.url(MANIFEST)} does not list it "
                                 "(files left by an interrupted change are never loaded)")
        where = record.path or name
        try:
            data = self.fs.cat_file(self._full(where))
        except FileNotFoundError:
            raise IntegrityError(f"{self.url(where)} is missing: the run's manifest lists it") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != record.sha256 or len(data) != record.size:
            raise IntegrityError(f"{self.url(where)} does not match the run's manifest (SHA-256 {actual[:16]}... "
                                 f"instead of {record.sha256[:16]}...): it changed after it was published, so it "
                                 "is not loaded")
        return data

    def read_json(self, name: str, manifest: Manifest) -> Any:
        return json.loads(self.read(name, manifest))

    def leaderboard(self, manifest: Manifest) -> pd.DataFrame:
        board = pd.read_csv(io.BytesIO(self.read(LEADERBOARD, manifest)))
        return board.fillna({"error": "", "note": "", "algorithm_pick": ""})  # CSV reads '' as NaN

    def assignments(self, manifest: Manifest, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.read(ASSIGNMENTS, manifest)), columns=columns)

    def assignment_parts(self, manifest: Manifest) -> list[str]:
        """The files of the ``assignments/`` dataset (a partitioned table's run), in row order."""
        return sorted(name for name in manifest.files if name.startswith(f"{ASSIGNMENTS_DATASET}/"))

    def record_written(self, draft: Manifest, written: dict[str, tuple[str, int]]) -> Manifest:
        """``draft`` listing files another process wrote under their own names in this first revision
        (name -> SHA-256 and size), as :meth:`stage` lists the files it writes."""
        if draft.revision != 0:
            raise ValueError("only a run's first revision records files written elsewhere")
        records = {name: FileRecord(sha256=sha256, size=size, revision=0) for name, (sha256, size) in written.items()}
        for name in records:
            fault_point(f"stage:{name}")
        return draft.model_copy(update={"files": {**draft.files, **records}})

    def features(self, manifest: Manifest) -> "FeatureCache":
        """The cached reduced matrices and the partition (what rerun, report and recluster reuse)."""
        partition = np.load(io.BytesIO(self.read(FEATURES_PARTITION, manifest)))
        return FeatureCache(Partition(train=partition["train"], validation=partition["validation"]),
                            np.load(io.BytesIO(self.read(FEATURES_TRAIN, manifest))),
                            np.load(io.BytesIO(self.read(FEATURES_VALIDATION, manifest))))

    @staticmethod
    def scoring_labels_file(labels: pd.DataFrame) -> bytes:
        """The file :meth:`scoring_labels` reads: ``labels`` (indexed by row key) with the keys as a column."""
        return frame_to_parquet_bytes(labels.reset_index())

    def scoring_labels(self, manifest: Manifest) -> pd.DataFrame | None:
        """Every model's labels of the scoring rows (what their agreement is measured on), indexed by the
        rows' keys (by position for runs published before the keys were kept); None for runs published
        before the labels were kept."""
        if SCORING_LABELS not in manifest.files:
            return None
        frame = pd.read_parquet(io.BytesIO(self.read(SCORING_LABELS, manifest)))
        return frame.set_index(SCORING_ROW) if SCORING_ROW in frame.columns else frame

    def stage(self, draft: Manifest, files: dict[str, bytes | str]) -> Manifest:
        """Write ``files`` for the revision ``draft`` describes; return the draft listing them.

        Each file is written whole. A name the committed revision lists is never overwritten:
        the new version goes under ``revisions/<r>-<change>/``, a name no other attempt uses (and
        the listed version, when it sits under its own name, is first kept under its own
        revision's folder, since the plain name gets the new copy after the commit).
        """
        records = dict(draft.files)
        for name, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            listed = records.get(name)
            if listed is None:
                where = name
            elif (listed.revision, listed.change) == (draft.revision, draft.change):  # earlier in this change
                where = listed.path or name
            else:
                where = revision_file(draft.revision, draft.change, name)
                if listed.path is None:
                    self._keep(name, revision_file(listed.revision, listed.change, name))
            write_whole(self.fs, self._full(where), data)
            records[name] = FileRecord(sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                                       revision=draft.revision, change=draft.change,
                                       path=None if where == name else where)
            fault_point(f"stage:{name}")
        return draft.model_copy(update={"files": records})

    def _keep(self, name: str, kept: str) -> None:
        if not self.exists(kept):
            write_whole(self.fs, self._full(kept), self.fs.cat_file(self._full(name)))

    def commit(self, draft: Manifest, lock: "RunLock | None" = None) -> Manifest:
        """Commit ``draft``: write its manifest, the last write of a change, which makes it the current revision.

        The first revision is created only if no manifest is there; a later one only while
        ``lock`` is held and the committed revision is still the one the change started
        from (on S3 the write itself is conditional on the manifest's version).
        """
        manifest = draft.model_copy(update={"status": "complete", "committed_at": _now().isoformat()})
        data = manifest.to_json()
        fault_point("commit:before")
        if manifest.revision == 0:
            if not create_new(self.fs, self._full(MANIFEST), data):
                raise RunExistsError(f"{self.uri}: another run was published into this folder meanwhile; "
                                     "this one is not. Choose another --out.")
        else:
            if lock is None or not lock.held():
                raise ConcurrentChangeError(f"{self.uri}: this change no longer holds the run's lock (it expired "
                                            "and another process took it); nothing was published. Retry.")
            etag = etag_of(self.fs, self._full(MANIFEST))
            current = parse_manifest(self.fs.cat_file(self._full(MANIFEST)), self.url(MANIFEST))
            if current.revision != manifest.revision - 1 or not replace_if_unchanged(
                    self.fs, self._full(MANIFEST), data, etag):
                raise ConcurrentChangeError(
                    f"{self.uri} changed while this change ran (revision {current.revision}, not "
                    f"{manifest.revision - 1}); nothing was published. Retry on the current revision.")
        fault_point("commit:after")
        self.refresh_plain_names(manifest)
        return manifest

    def refresh_plain_names(self, manifest: Manifest) -> None:
        """Copy the current version of each file that lives under ``revisions/`` to its own name."""
        for name, record in manifest.files.items():
            if record.path is None:
                continue
            plain = self._full(name)
            if self.fs.exists(plain) and hashlib.sha256(self.fs.cat_file(plain)).hexdigest() == record.sha256:
                continue
            write_whole(self.fs, plain, self.read(name, manifest))

    def ensure_unlocked(self) -> None:
        """Raise :class:`RunLockedError` when a live process holds the run's lock (a check before a change
        starts; taking the lock is what guarantees one writer)."""
        holder = RunLock.holder(self)
        if holder is not None and not _is_stale(holder[0]):
            raise RunLockedError(_locked_message(self, holder[0]))

    @contextmanager
    def locked(self, purpose: str, wait: float = 0.0) -> Iterator["RunLock"]:
        """Hold the run's lock (one writer at a time) for the duration of the block; while another
        live process holds it, wait up to ``wait`` seconds for it."""
        lock = RunLock.acquire(self, purpose, wait)
        try:
            yield lock
        finally:
            lock.release()


@dataclass
class RunLock:
    """The run's lock: ``lock.json``, created only if absent, naming its owner and its expiry.

    A lock whose expiry passed, or whose owner process on this host is gone, is stale and
    is broken by the next writer.
    """

    folder: RunFolder
    token: str
    content: bytes

    @classmethod
    def acquire(cls, folder: RunFolder, purpose: str, wait: float = 0.0) -> "RunLock":
        """Take the lock; while a live process holds it, retry for up to ``wait`` seconds, then raise
        :class:`RunLockedError`."""
        deadline = time.monotonic() + wait
        pause = LOCK_POLL_SECONDS[0]
        while True:
            try:
                return cls._acquire(folder, purpose)
            except RunLockedError as exc:
                if time.monotonic() >= deadline:
                    raise
                if pause == LOCK_POLL_SECONDS[0]:
                    logger.warning("waiting up to %.0f s for the lock: %s", wait, exc)
                time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
                pause = min(2 * pause, LOCK_POLL_SECONDS[1])  # fewer requests to a store while a long change runs

    @classmethod
    def _acquire(cls, folder: RunFolder, purpose: str) -> "RunLock":
        seconds = lock_seconds()
        now = _now()
        token = uuid.uuid4().hex
        content = json.dumps({"token": token, "purpose": purpose, "pid": os.getpid(), "host": socket.gethostname(),
                              "acquired_at": now.isoformat(),
                              "expires_at": (now + dt.timedelta(seconds=seconds)).isoformat()}, indent=2).encode()
        path = folder._full(LOCK)
        for _ in range(3):
            if create_new(folder.fs, path, content):
                return cls(folder, token, content)
            found = cls.holder(folder)
            if found is None:
                continue
            holder, etag, held = found
            if not _is_stale(holder):
                raise RunLockedError(_locked_message(folder, holder))
            delete_if_unchanged(folder.fs, path, etag, held)
        raise RunLockedError(f"{folder.uri}: could not take the run's lock ({folder.url(LOCK)}); retry")

    @staticmethod
    def holder(folder: RunFolder) -> tuple[dict, str | None, bytes] | None:
        """Who holds the lock (its record, ETag and bytes), or None when nobody does."""
        path = folder._full(LOCK)
        try:
            etag = etag_of(folder.fs, path)
            held = folder.fs.cat_file(path)
        except FileNotFoundError:
            return None
        return json.loads(held), etag, held

    def held(self) -> bool:
        try:
            return self.folder.fs.cat_file(self.folder._full(LOCK)) == self.content
        except FileNotFoundError:
            return False

    def release(self) -> None:
        path = self.folder._full(LOCK)
        try:
            etag = etag_of(self.folder.fs, path)
        except FileNotFoundError:
            return
        delete_if_unchanged(self.folder.fs, path, etag, self.content)


def lock_seconds() -> float:
    """How long a lock taken now lasts unless released (``CLUSTERFLOW_LOCK_SECONDS``, default 2 hours)."""
    return float(os.environ.get(LOCK_SECONDS_ENV, DEFAULT_LOCK_SECONDS))


def _locked_message(folder: RunFolder, holder: dict) -> str:
    return (f"{folder.uri} is being changed by a {holder['purpose']} (process {holder['pid']} on {holder['host']}, "
            f"since {holder['acquired_at']}); one change at a time. Retry when it finishes; its lock expires at "
            f"{holder['expires_at']} (or delete {folder.url(LOCK)} if that process is gone).")


def _is_stale(holder: dict) -> bool:
    if dt.datetime.fromisoformat(holder["expires_at"]) < _now():
        return True
    if holder["host"] != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


@dataclass
class FeatureCache:
    """The reduced matrices of the train and validation rows, and which input rows they are."""

    partition: Partition
    X_train: np.ndarray
    X_validation: np.ndarray

    def full_matrix(self) -> np.ndarray:
        """The reduced matrix of every input row, in input order."""
        X = np.empty((len(self.X_train) + len(self.X_validation), self.X_train.shape[1]))
        X[self.partition.train] = self.X_train
        X[self.partition.validation] = self.X_validation
        return X

    def files(self) -> dict[str, bytes]:
        """The ``features/`` files."""
        partition = io.BytesIO()
        np.savez(partition, train=self.partition.train, validation=self.partition.validation)
        return {FEATURES_TRAIN: npy_bytes(self.X_train), FEATURES_VALIDATION: npy_bytes(self.X_validation),
                FEATURES_PARTITION: partition.getvalue()}


def npy_bytes(array: np.ndarray) -> bytes:
    """An array as ``.npy`` file bytes."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
