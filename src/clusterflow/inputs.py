"""The first stage of a run: read the table, decide its roles and validate it, in one report.

Light to import (pandas, fsspec): a file that does not even read is refused before the
checks import every modality.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import fsspec
import pandas as pd

from .parameters import run_field
from .roles import RoleDecision, id_column, infer_roles, load_roles_file
from .storage import fingerprint, read_bytes, read_table

if TYPE_CHECKING:
    from .large_tables import TableSample


@dataclass
class RunInputs:
    """The loaded, validated input table and its role decisions.

    For a partitioned table (:mod:`clusterflow.large_tables`) ``frame`` is its seeded
    sample and ``sample`` says which rows of the table it holds.
    """

    data_uri: str
    frame: pd.DataFrame
    decisions: list[RoleDecision]
    sha256: str
    seconds: float = 0.0
    sample: TableSample | None = None

    @property
    def roles(self) -> dict[str, str]:
        return {d.column: d.role for d in self.decisions}

    @property
    def table_rows(self) -> int:
        """Rows of the whole table (more than the frame's when it is a sample)."""
        return len(self.frame) if self.sample is None else self.sample.total_rows

    @property
    def id_column(self) -> str | None:
        return id_column(self.decisions)


SAMPLE_ROWS = run_field("sample_rows").default
GLOB_CHARACTERS = "*?["

# Inputs validated ahead of their run in this process (the command line checks the table
# before it starts Prefect), keyed by the arguments and the file's fingerprint.
_PRELOADED: dict[tuple, RunInputs] = {}


def load_input(data_uri: str, roles_uri: str | None = None, storage_options: dict | None = None,
               image_root: str | None = None, on_bad_image: str = "error", *, sample_rows: int = SAMPLE_ROWS,
               seed: int = 0) -> RunInputs:
    """Read the table and check it (:func:`check_input`), its roles file first.

    Image paths resolve against ``image_root`` (default: the table's folder) and are
    kept as URIs in the returned frame. A Parquet dataset folder or a glob of CSVs is read
    by partitions: validated whole, its frame a seeded sample of ``sample_rows`` rows
    (:func:`clusterflow.large_tables.load_sampled_input`). An input :func:`preload_input`
    validated with the same arguments, from unchanged files, is handed over instead of being read again.
    """
    key = _input_key(data_uri, roles_uri, storage_options, image_root, on_bad_image, sample_rows, seed)
    preloaded = _PRELOADED.pop(key, None) if key else None
    if preloaded is not None:
        return preloaded
    if is_partitioned_table(data_uri, storage_options):
        from .large_tables import load_sampled_input  # dask, only for a folder or a glob
        from .modalities.image import image_root_of

        return load_sampled_input(data_uri, roles_uri, storage_options, sample_rows=sample_rows, seed=seed,
                                  image_root=image_root or image_root_of(data_uri), on_bad_image=on_bad_image)
    started = time.perf_counter()
    raw = read_bytes(data_uri, storage_options)
    frame = read_table(data_uri, storage_options, raw=raw)
    overrides = load_roles_file(roles_uri) if roles_uri else None
    from .modalities.image import image_root_of  # the checks import every modality (scikit-learn)

    inputs = check_input(frame, overrides, data_uri=data_uri, sha256=hashlib.sha256(raw).hexdigest(),
                         image_root=image_root or image_root_of(data_uri), on_bad_image=on_bad_image)
    return replace(inputs, seconds=time.perf_counter() - started)


def is_partitioned_table(uri: str, storage_options: dict | None = None) -> bool:
    """True for a glob of files or a folder (a Parquet dataset or a folder of CSVs), local or fsspec."""
    if any(c in uri for c in GLOB_CHARACTERS):
        return True
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    try:
        return fs.isdir(path)
    except (FileNotFoundError, PermissionError):
        return False


def check_input(frame: pd.DataFrame, overrides: dict[str, str] | None, *, data_uri: str, sha256: str,
                image_root: str, on_bad_image: str = "error") -> RunInputs:
    """Decide the roles of an in-memory table (``overrides`` win) and validate it with its image files."""
    from .validation import validate_input

    started = time.perf_counter()
    decisions = infer_roles(frame, overrides)
    frame = validate_input(frame, decisions, image_root=image_root, on_bad_image=on_bad_image)
    return RunInputs(data_uri, frame, decisions, sha256, time.perf_counter() - started)


def preload_input(data_uri: str, roles_uri: str | None = None, storage_options: dict | None = None,
                  image_root: str | None = None, on_bad_image: str = "error", *, sample_rows: int = SAMPLE_ROWS,
                  seed: int = 0) -> RunInputs:
    """:func:`load_input` now, kept for the run that will ask for the same input in this process."""
    inputs = load_input(data_uri, roles_uri, storage_options, image_root, on_bad_image, sample_rows=sample_rows,
                        seed=seed)
    key = _input_key(data_uri, roles_uri, storage_options, image_root, on_bad_image, sample_rows, seed)
    if key:
        _PRELOADED.clear()
        _PRELOADED[key] = inputs
    return inputs


def _input_key(data_uri, roles_uri, storage_options, image_root, on_bad_image, sample_rows, seed) -> tuple | None:
    """The arguments plus the data and roles files' fingerprints; None when a file cannot be fingerprinted."""
    try:
        prints = tuple(_fingerprint(uri, storage_options) for uri in (data_uri, roles_uri) if uri)
    except Exception:  # a missing file: nothing was preloaded for it
        return None
    return (data_uri, roles_uri, json.dumps(storage_options, sort_keys=True, default=str), image_root,
            on_bad_image, sample_rows, seed, prints)


def _fingerprint(uri: str, storage_options: dict | None) -> str:
    """The file's fingerprint, or a partitioned table's (its listing's)."""
    if is_partitioned_table(uri, storage_options):
        from .large_tables import open_dataset

        return open_dataset(uri, storage_options).fingerprint()
    return fingerprint(uri, storage_options)


