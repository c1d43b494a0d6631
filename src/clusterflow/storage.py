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
import re
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import fsspec
import numpy as np
import pandas as pd

from .errors import InputValidationError, Problem, RunExistsError, RunNotFoundError

MANIFEST = "manifest.json"
TABLE_FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
                 ".ndjson": "jsonl", ".json": "json", ".xlsx": "excel"}
DELIMITERS = ",;\t|"
SNIFF_BYTES = 64 * 1024
DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
READ_HINT = "use a .csv, .tsv, .parquet, .jsonl, .json (an array of records) or .xlsx file"


def table_format(uri: str) -> str:
    """The table format of ``uri`` from its extension (compression suffixes allowed)."""
    name = uri.lower()
    for suffix in (".gz", ".bz2", ".zst", ".xz"):
        name = name.removesuffix(suffix)
    for ext, fmt in TABLE_FORMATS.items():
        if name.endswith(ext):
            return fmt
    raise InputValidationError([Problem(rule=f"unknown table format of {uri!r}", hint=READ_HINT)])


def read_bytes(uri: str, storage_options: dict | None = None) -> bytes:
    """The file's bytes (decompressed by extension); a missing or empty file is an input problem."""
    table_format(uri)
    try:
        with fsspec.open(uri, "rb", compression="infer", **(storage_options or {})) as f:
            raw = f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise InputValidationError([Problem(rule=f"file not found: {uri}", hint="check the path")]) from None
    if not raw.strip():
        raise InputValidationError([Problem(rule=f"the file {uri} is empty", hint="give a table with a header and rows")])
    return raw


def check_readable(uri: str, storage_options: dict | None = None) -> None:
    """Raise an input problem when ``uri`` has an unknown format or is not a file (without reading it)."""
    table_format(uri)
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    if not fs.isfile(path):
        raise InputValidationError([Problem(rule=f"file not found: {uri}", hint="check the path")])


def fingerprint(uri: str, storage_options: dict | None = None) -> str:
    """A key that changes when the file changes (size and modification time, or the store's ETag)."""
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    return fs.ukey(path)


def read_table(uri: str, storage_options: dict | None = None, raw: bytes | None = None) -> pd.DataFrame:
    """Read a table: CSV/TSV, Parquet, JSON Lines, a JSON array of records or an Excel sheet.

    CSV text may be UTF-8 (with or without a BOM) or Windows-1252/Latin-1; the delimiter
    (``, ; tab |``) and a decimal comma are detected. Column names become strings; nested
    values (lists, structs) become JSON text. Raises :class:`InputValidationError` for a
    missing, empty or unreadable file, for rows with more fields than the header and for
    duplicate column names (which pandas would silently rename).
    """
    fmt = table_format(uri)
    raw = read_bytes(uri, storage_options) if raw is None else raw
    try:
        frame = _READERS[fmt](raw)
    except InputValidationError:
        raise
    except Exception as exc:  # pandas, pyarrow and openpyxl raise many types for a corrupt file
        raise InputValidationError(
            [Problem(rule=f"cannot read {uri} as {fmt}: {exc}", hint=f"check that the file is valid {fmt}")]
        ) from exc
    frame.columns = [str(c) for c in frame.columns]
    _reject_duplicate_names(list(frame.columns))
    return _nested_as_json(frame)


def _read_csv(raw: bytes) -> pd.DataFrame:
    text = decode_text(raw)
    sample = text[:SNIFF_BYTES]
    delimiter = sniff_delimiter(sample)
    header = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
    _reject_duplicate_names(header)
    decimal = "," if delimiter != "," and _uses_decimal_comma(sample, delimiter) else "."
    try:
        return pd.read_csv(io.StringIO(text), sep=delimiter, decimal=decimal, low_memory=False)
    except pd.errors.ParserError:
        raise InputValidationError([_ragged_rows(text, delimiter)]) from None


def decode_text(raw: bytes) -> str:
    """UTF-8 text (a BOM dropped), else Windows-1252 (Excel's "CSV" on Western systems), else Latin-1."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")  # every byte is a Latin-1 character


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a CSV sample: the one csv.Sniffer finds among ``, ; tab |``, else a comma."""
    lines = sample.splitlines()
    head = "\n".join(lines[:50] if len(lines) > 1 else lines)
    try:
        return csv.Sniffer().sniff(head, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in DELIMITERS} if lines else {}
        best = max(counts, key=counts.get, default=",")
        return best if counts.get(best) else ","


def _uses_decimal_comma(sample: str, delimiter: str) -> bool:
    """True when numbers in the sample are written 3,14 (as European spreadsheets export them)."""
    rows = list(csv.reader(io.StringIO(sample), delimiter=delimiter))[1:200]
    cells = [cell.strip() for row in rows for cell in row]
    return any(DECIMAL_COMMA.match(cell) for cell in cells) and not any(re.fullmatch(r"[+-]?\d+\.\d+", c)
                                                                       for c in cells)


def _ragged_rows(text: str, delimiter: str, shown: int = 10) -> Problem:
    """The rows with more fields than the header (pandas stops at the first one)."""
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    width = len(next(reader))
    long_rows = [number for number, row in enumerate(reader) if len(row) > width]
    return Problem(rule=f"rows have more fields than the header's {width} (delimiter {delimiter!r})",
                   rows=tuple(long_rows[:shown]), n_rows=len(long_rows),
                   hint="quote the fields that contain the delimiter, or fix those rows (row numbers count data "
                        "rows from 0)")


def _read_parquet(raw: bytes) -> pd.DataFrame:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(raw))
    _reject_duplicate_names(table.column_names)
    return table.to_pandas()


def _read_json_lines(raw: bytes) -> pd.DataFrame:
    return pd.read_json(io.BytesIO(raw), lines=True, dtype=False)


def _read_json(raw: bytes) -> pd.DataFrame:
    """A JSON array of records (``[{"a": 1}, ...]``), or JSON Lines saved as .json."""
    document = raw.lstrip()
    if not document.startswith(b"["):
        return _read_json_lines(raw)
    records = json.loads(decode_text(raw))
    if not all(isinstance(r, dict) for r in records):
        raise InputValidationError([Problem(rule="the JSON array does not hold records (objects)",
                                            hint='write one object per row: [{"column": value, ...}, ...]')])
    return pd.DataFrame.from_records(records)


def _read_excel(raw: bytes) -> pd.DataFrame:
    """The first sheet of an Excel workbook, its first row the header."""
    return pd.read_excel(io.BytesIO(raw), sheet_name=0, engine="openpyxl")


_READERS = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_json_lines, "json": _read_json,
            "excel": _read_excel}


def _nested_as_json(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists, dicts and arrays inside cells become JSON text, which every later step can hash and compare."""
    for column in frame.columns[frame.dtypes == object]:
        values = frame[column]
        nested = values.map(lambda v: isinstance(v, (list, dict, tuple, np.ndarray)))
        if nested.any():
            frame[column] = values.where(~nested, values[nested].map(_to_json))
    return frame


def _to_json(value) -> str:
    return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value, default=_json_default,
                      ensure_ascii=False)


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


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
