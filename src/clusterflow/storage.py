"""Reading tables, and writing single objects all-or-nothing on any fsspec location (local or s3://).

Every object is serialised completely in memory, then written so that a reader sees the
old object or the new one, never a part: one PUT on S3 (all-or-nothing by itself), a
temporary name in the same folder and a rename on local and other filesystems. Run folders
build on these writes (:mod:`clusterflow.run_folder`).
"""
from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import posixpath
import re
import sys
import uuid
from collections import Counter

import fsspec
import numpy as np
import pandas as pd
from fsspec.implementations.local import LocalFileSystem

from .errors import InputValidationError, Problem

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
    """Raise an input problem when ``uri`` has an unknown format or is not a file (without reading it);
    a Parquet dataset folder or a glob must list data files of one format."""
    from .inputs import is_partitioned_table

    if is_partitioned_table(uri, storage_options):
        from .large_tables import open_dataset

        open_dataset(uri, storage_options)
        return
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


def frame_to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def is_s3(fs: fsspec.AbstractFileSystem) -> bool:
    return any(p in ("s3", "s3a") for p in ([fs.protocol] if isinstance(fs.protocol, str) else fs.protocol))


def write_whole(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write one object so that readers see the old one or the new one, never a part of either."""
    _make_parent(fs, path)
    if is_s3(fs):
        fs.pipe_file(path, data)
        return
    temporary = _temporary_name(path)
    if isinstance(fs, LocalFileSystem):
        _write_synced(temporary, data)
        os.replace(temporary, path)
        return
    fs.pipe_file(temporary, data)
    fs.mv(temporary, path)


def create_new(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> bool:
    """Create the object only if nothing is at ``path`` (atomically); False when something is.

    S3: a PUT with ``If-None-Match: *``. Local: the complete file under a temporary name,
    then a hard link to ``path`` (which fails when ``path`` exists), so no reader ever sees
    a partly written object. Other filesystems: a look, then a write (two processes can both
    succeed there).
    """
    _make_parent(fs, path)
    if is_s3(fs):
        try:
            fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        return True
    if not isinstance(fs, LocalFileSystem):  # no exclusive create known here: look, then write (not atomic)
        if fs.exists(path):
            return False
        write_whole(fs, path, data)
        return True
    temporary = _temporary_name(path)
    _write_synced(temporary, data)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(temporary)
    return True


def replace_if_unchanged(fs: fsspec.AbstractFileSystem, path: str, data: bytes, etag: str | None) -> bool:
    """Replace the object at ``path`` only if it is still the version ``etag`` names (S3 ``If-Match``).

    Elsewhere (no compare-and-swap): a whole-object write; the caller holds the run's lock.
    Returns False when the object changed meanwhile.
    """
    if not is_s3(fs) or etag is None:
        write_whole(fs, path, data)
        return True
    bucket, key, _ = fs.split_path(path)
    try:
        fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfMatch=etag)
    except OSError as exc:  # s3fs turns 412 PreconditionFailed into EINVAL
        if exc.errno == errno.EINVAL:
            return False
        raise
    finally:
        fs.invalidate_cache(path)
    return True


def delete_if_unchanged(fs: fsspec.AbstractFileSystem, path: str, etag: str | None, content: bytes) -> bool:
    """Delete the object only if it is still the version read (``etag`` on S3, ``content`` elsewhere).

    S3: a DELETE with ``If-Match``. Local: a rename to a unique name first (of two processes
    only one can move it), then a look at what was moved: another version goes back.
    Returns False when the object changed or is gone.
    """
    if is_s3(fs):
        bucket, key, _ = fs.split_path(path)
        try:
            fs.call_s3("delete_object", Bucket=bucket, Key=key, **({"IfMatch": etag} if etag else {}))
        except OSError:
            return False
        finally:
            fs.invalidate_cache(path)
        return True
    moved = _temporary_name(path)
    try:
        fs.mv(path, moved)
    except FileNotFoundError:
        return False
    same = fs.cat_file(moved) == content
    if not same and isinstance(fs, LocalFileSystem):
        try:
            os.link(moved, path)
        except FileExistsError:
            pass
    fs.rm_file(moved)
    return same


def etag_of(fs: fsspec.AbstractFileSystem, path: str) -> str | None:
    """The object's version tag on S3 (None elsewhere)."""
    if not is_s3(fs):
        return None
    fs.invalidate_cache(path)
    return fs.info(path).get("ETag")


def _make_parent(fs: fsspec.AbstractFileSystem, path: str) -> None:
    parent = posixpath.dirname(path)
    if parent and not is_s3(fs):
        fs.makedirs(parent, exist_ok=True)


def _temporary_name(path: str) -> str:
    folder, name = posixpath.split(path)
    return posixpath.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.tmp")


def _write_synced(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
