"""Reading tables and publishing run folders on any fsspec location (local or s3://).

Publishing rule: every object is serialised completely in memory and then written
with one ``pipe`` call (one PUT on S3, all-or-nothing), and ``manifest.json`` is
written last. A folder without a complete manifest is not a run, so a failed or
half-finished run never replaces a complete one.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import posixpath
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import fsspec
import pandas as pd

from .errors import InputValidationError, Problem, RunExistsError, RunNotFoundError

MANIFEST = "manifest.json"
TABLE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def table_format(uri: str) -> str:
    """The table format of ``uri`` from its extension (compression suffixes allowed)."""
    name = uri.lower()
    for suffix in (".gz", ".bz2", ".zst", ".xz"):
        name = name.removesuffix(suffix)
    for ext, fmt in TABLE_FORMATS.items():
        if name.endswith(ext):
            return fmt
    raise InputValidationError(
        [Problem(rule=f"unknown table format of {uri!r}", hint="use a .csv, .parquet or .jsonl file")]
    )


def read_table(uri: str, storage_options: dict | None = None) -> pd.DataFrame:
    """Read a CSV, Parquet or JSON Lines table from a local path or fsspec URI.

    Raises :class:`InputValidationError` for a missing, empty or unreadable file and
    for duplicate column names (which pandas would silently rename).
    """
    fmt = table_format(uri)
    try:
        with fsspec.open(uri, "rb", compression="infer", **(storage_options or {})) as f:
            raw = f.read()
    except FileNotFoundError:
        raise InputValidationError([Problem(rule=f"file not found: {uri}", hint="check the path")]) from None
    if not raw.strip():
        raise InputValidationError([Problem(rule=f"the file {uri} is empty", hint="give a table with a header and rows")])
    try:
        if fmt == "csv":
            _reject_duplicate_names(next(csv.reader(io.StringIO(raw.decode("utf-8-sig").split("\n", 1)[0]))))
            return pd.read_csv(io.BytesIO(raw), low_memory=False)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(io.BytesIO(raw))
            _reject_duplicate_names(table.column_names)
            return table.to_pandas()
        return pd.read_json(io.BytesIO(raw), lines=True, dtype=False)
    except InputValidationError:
        raise
    except Exception as exc:  # pandas and pyarrow raise many types for a corrupt file
        raise InputValidationError(
            [Problem(rule=f"cannot read {uri} as {fmt}: {exc}", hint=f"check that the file is valid {fmt}")]
        ) from exc


def _reject_duplicate_names(names: list[str]) -> None:
    duplicates = [name for name, count in Counter(names).items() if count > 1]
    if duplicates:
        raise InputValidationError(
            [Problem(rule="duplicate column name", column=name, hint="rename the columns so each name is unique")
             for name in duplicates]
        )


def content_hash(uri: str, storage_options: dict | None = None) -> str:
    """SHA-256 of the file at ``uri``, streamed."""
    digest = hashlib.sha256()
    with fsspec.open(uri, "rb", **(storage_options or {})) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class RunFolder:
    """A run folder at a local path or fsspec URI."""

    uri: str
    storage_options: dict | None = None

    def __post_init__(self) -> None:
        self.fs, self.path = fsspec.core.url_to_fs(self.uri, **(self.storage_options or {}))

    def _full(self, name: str) -> str:
        return posixpath.join(self.path, name)

    def is_published(self) -> bool:
        """True when a complete run's manifest is there."""
        self.fs.invalidate_cache()
        return self.fs.exists(self._full(MANIFEST))

    def ensure_unpublished(self) -> None:
        """Raise :class:`RunExistsError` when the folder already holds a published run."""
        if self.is_published():
            raise RunExistsError(
                f"{self.uri} already holds a published run; it is never overwritten. "
                "Choose another --out (or leave it out for a new folder)."
            )

    def put(self, name: str, data: bytes | str) -> None:
        """Write one object in a single call: it exists whole or not at all."""
        if isinstance(data, str):
            data = data.encode()
        full = self._full(name)
        parent = posixpath.dirname(full)
        if parent:
            self.fs.makedirs(parent, exist_ok=True)
        self.fs.pipe_file(full, data)

    def get(self, name: str) -> bytes:
        return self.fs.cat_file(self._full(name))

    def exists(self, name: str) -> bool:
        return self.fs.exists(self._full(name))

    def commit(self, manifest: dict[str, Any]) -> None:
        """Write the manifest: the last write of a run, which makes it visible to readers."""
        self.put(MANIFEST, json.dumps(manifest, indent=2, default=str))

    def republish(self, files: dict[str, bytes | str], manifest: dict[str, Any]) -> dict[str, Any]:
        """Add or replace files of a published run, then commit the next revision of its manifest.

        Files are written in the given order (put new files before the ones that refer
        to them) and the manifest last. A file that already exists is first copied to
        ``history/<revision>/<name>``, so the revision the current manifest describes
        stays recoverable whatever happens before the new manifest lands (a retry after
        a partial attempt keeps the first copy, the one that revision describes).
        """
        revision = int(self.manifest().get("revision", 0))
        for name, data in files.items():
            kept = f"history/{revision}/{name}"
            if self.exists(name) and not self.exists(kept):
                self.put(kept, self.get(name))
            self.put(name, data)
        manifest = {**manifest, "status": "complete", "revision": revision + 1,
                    "committed_at": datetime.now(timezone.utc).isoformat()}
        self.commit(manifest)
        return manifest

    def manifest(self) -> dict[str, Any]:
        """The manifest of a complete run, or :class:`RunNotFoundError`."""
        if not self.is_published():
            raise RunNotFoundError(f"no published run at {self.uri} (no {MANIFEST})")
        manifest = json.loads(self.get(MANIFEST))
        if manifest.get("status") != "complete":
            raise RunNotFoundError(f"the run at {self.uri} is not complete (status {manifest.get('status')!r})")
        return manifest

    def url(self, name: str = "") -> str:
        """A URI for ``name`` inside this folder, usable by fsspec."""
        return self.uri.rstrip("/") + ("/" + name if name else "")


def frame_to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
