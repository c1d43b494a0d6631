"""Tables larger than memory: a Parquet dataset folder or a glob of CSV files, read by partitions.

The table is never held whole in this process. Validation runs partition by partition
(the same rules and report as an in-memory table, with row numbers counted over the
whole table); the run trains and scores on a seeded sample of the rows, which is
validated and featurized like an in-memory table; every row is then assigned on the
Dask cluster, each partition written as one file of the run's ``assignments/`` dataset.
"""
from __future__ import annotations

import hashlib
import posixpath
import time
from dataclasses import dataclass, replace

import dask
import fsspec
import numpy as np
import pandas as pd

from .errors import InputValidationError, Problem
from .inputs import GLOB_CHARACTERS, RunInputs
from .input_schema import ID_CHECK, MIN_ROWS, TABLE_HINTS
from .predicting import _infer_numbers, assign_rows, read_partitioned
from .roles import RoleDecision, infer_roles
from .run_folder import Manifest, RunFolder, SampleRecord, assignments_part
from .storage import frame_to_parquet_bytes, table_format, write_whole

DATASET_FORMATS = ("parquet", "csv")
BLOCKSIZE = "64MB"
ID_RULE = ID_CHECK.error
SHOWN_ROWS = 100  # row numbers kept per problem; the count covers them all


@dataclass(frozen=True)
class TableDataset:
    """The files of a partitioned table, in a stable order, and their format."""

    uri: str
    files: tuple[str, ...]
    format: str
    storage_options: dict | None = None

    def partitions(self) -> list:
        """The table's partitions as delayed pandas frames, with pandas' own string dtype (as an
        in-memory read gives), CSV columns as text (numbers are inferred per partition)."""
        with dask.config.set({"dataframe.convert-string": False}):
            return read_partitioned(list(self.files), BLOCKSIZE, self.storage_options, fmt=self.format).to_delayed()

    def fingerprint(self) -> str:
        """SHA-256 of the file listing (names, sizes and the store's ETag or modification time): it changes
        when any file changes, without reading the data."""
        fs, _ = fsspec.core.url_to_fs(self.uri, **(self.storage_options or {}))
        listing = "\n".join(f"{f}\t{fs.size(f)}\t{fs.ukey(f)}" for f in self.files)
        return hashlib.sha256(listing.encode()).hexdigest()


@dataclass(frozen=True)
class TableSample:
    """Which rows of a partitioned table a run trained and scored on."""

    dataset: TableDataset
    positions: np.ndarray  # 0-based row numbers in the whole table, ascending
    partition_rows: tuple[int, ...]

    @property
    def total_rows(self) -> int:
        return int(sum(self.partition_rows))

    @property
    def offsets(self) -> list[int]:
        return np.concatenate([[0], np.cumsum(self.partition_rows)[:-1]]).astype(int).tolist()

    def record(self, seed: int) -> SampleRecord:
        return SampleRecord(rows=len(self.positions), of_rows=self.total_rows, seed=seed)


def open_dataset(uri: str, storage_options: dict | None = None) -> TableDataset:
    """The data files of a glob or folder (hidden and ``_``-prefixed files skipped), all of one format."""
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    if any(c in uri for c in GLOB_CHARACTERS):
        found = fs.glob(path)
    else:
        found = [p for p in fs.find(path) if not any(part.startswith(("_", ".")) for part in
                                                      posixpath.relpath(p, path).split("/"))]
    files = sorted(p for p in found if fs.isfile(p))
    if not files:
        raise InputValidationError([Problem(rule=f"no data files at {uri}", where="DATA",
                                            hint="give a Parquet dataset folder or a glob of CSV files, e.g. "
                                                 "'data/*.csv'")])
    formats = {_format_of(p) for p in files}
    if len(formats) != 1 or not formats <= set(DATASET_FORMATS):
        raise InputValidationError([Problem(rule=f"{uri} mixes or holds unsupported formats: {sorted(formats)}",
                                            where="DATA", hint="a partitioned table is all Parquet or all CSV files")])
    protocol = fsspec.core.split_protocol(uri)[0]
    files = [f"{protocol}://{p}" if protocol and protocol != "file" else p for p in files]
    return TableDataset(uri, tuple(files), formats.pop(), storage_options)


def _format_of(path: str) -> str:
    try:
        return table_format(path)
    except InputValidationError:
        return posixpath.splitext(path)[1] or path


def load_sampled_input(data_uri: str, roles_uri: str | None, storage_options: dict | None, *, sample_rows: int,
                       seed: int, image_root: str, on_bad_image: str = "error"):
    """Read a partitioned table's seeded sample, decide roles on it and validate every partition.

    Returns the run's inputs: the sample as the frame (in table order), and the sample's
    description. Raises :class:`InputValidationError` with every problem of the whole table.
    """
    from .roles import load_roles_file
    from .validation import validate_input

    started = time.perf_counter()
    dataset = open_dataset(data_uri, storage_options)
    parts = dataset.partitions()
    lengths = tuple(int(n) for n in dask.compute(*[dask.delayed(len)(p) for p in parts]))
    total = sum(lengths)
    positions = sample_positions(total, sample_rows, seed)
    sample = TableSample(dataset, positions, lengths)
    frame = _read_sample(parts, sample)
    overrides = load_roles_file(roles_uri) if roles_uri else None
    decisions = infer_roles(frame, overrides)
    problems = table_problems(parts, sample, decisions, image_root, on_bad_image)
    if problems:
        raise InputValidationError(problems)
    frame = validate_input(frame, decisions, image_root=image_root, on_bad_image=on_bad_image)
    return RunInputs(data_uri, frame, decisions, dataset.fingerprint(), time.perf_counter() - started, sample=sample)


def sample_positions(total_rows: int, sample_rows: int, seed: int) -> np.ndarray:
    """``sample_rows`` row numbers of ``total_rows`` drawn with ``seed`` (all rows when the table is smaller)."""
    if total_rows <= sample_rows:
        return np.arange(total_rows)
    return np.sort(np.random.default_rng(seed).choice(total_rows, size=sample_rows, replace=False))


def _read_sample(parts: list, sample: TableSample) -> pd.DataFrame:
    """The sampled rows of every partition, in table order, with numbers inferred over the whole sample."""
    taken = []
    for part, offset, length in zip(parts, sample.offsets, sample.partition_rows):
        inside = sample.positions[(sample.positions >= offset) & (sample.positions < offset + length)]
        taken.append(dask.delayed(_take_rows)(part, inside - offset))
    frame = pd.concat(dask.compute(*taken), ignore_index=True)
    return as_read_in_memory(frame)


def as_read_in_memory(frame: pd.DataFrame) -> pd.DataFrame:
    """CSV text columns as an in-memory read of the same rows gives them: numbers where every value
    parses, else pandas' string dtype (Parquet partitions already have their stored types)."""
    frame = _infer_numbers(frame)
    text = [name for name in frame.columns if frame[name].dtype == object]
    return frame.astype(dict.fromkeys(text, "str"))


def _take_rows(part: pd.DataFrame, local_positions: np.ndarray) -> pd.DataFrame:
    return part.iloc[local_positions]


def table_problems(parts: list, sample: TableSample, decisions: list[RoleDecision], image_root: str,
                   on_bad_image: str) -> list[Problem]:
    """Every broken rule of the whole table, checked partition by partition, rows numbered over the table.

    Id uniqueness spans partitions: each partition returns its ids' 64-bit hashes, and only
    rows whose hash repeats are read again to find the ids that really repeat.
    """
    ids = [d.column for d in decisions if d.role == "id"]
    checks = [dask.delayed(_partition_problems)(part, offset, decisions, image_root, on_bad_image, ids)
              for part, offset in zip(parts, sample.offsets)]
    found = dask.compute(*checks)
    problems = [p for part_problems, _ in found for p in part_problems]
    for column in ids:
        problems += _repeated_ids(parts, sample.offsets, column, [hashes[column] for _, hashes in found])
    problems = merge_problems(problems)
    if sample.total_rows < MIN_ROWS:
        rule = f"the table has fewer than {MIN_ROWS} rows"
        problems.insert(0, Problem(rule=rule, hint=TABLE_HINTS[rule]))
    return problems


def _partition_problems(part: pd.DataFrame, offset: int, decisions: list[RoleDecision], image_root: str,
                        on_bad_image: str, ids: list[str]) -> tuple[list[Problem], dict[str, np.ndarray]]:
    from .validation import validate_input

    part = as_read_in_memory(part).set_axis(pd.RangeIndex(offset, offset + len(part)))
    hashes = {column: _hashes(part[column]) for column in ids}
    try:
        validate_input(part, decisions, image_root=image_root, on_bad_image=on_bad_image, min_rows=None)
    except InputValidationError as exc:
        return [p for p in exc.problems if p.rule != ID_RULE], hashes  # repeated ids: over the whole table
    return [], hashes


def _hashes(values: pd.Series) -> np.ndarray:
    return pd.util.hash_pandas_object(values, index=False).to_numpy()


def _repeated_ids(parts: list, offsets: list[int], column: str, hashes: list[np.ndarray]) -> list[Problem]:
    """The id problem of ``column``: every row whose id another row of the table also has."""
    unique, counts = np.unique(np.concatenate(hashes), return_counts=True)
    suspects = unique[counts > 1]
    if not len(suspects):
        return []
    candidates = pd.concat(dask.compute(*[dask.delayed(_rows_with_hashes)(part, offset, column, suspects)
                                          for part, offset in zip(parts, offsets)]))
    repeated = candidates[candidates.duplicated(keep=False)].sort_index()
    if repeated.empty:
        return []
    rows = tuple(int(r) for r in repeated.index)
    return [Problem(rule=ID_RULE, column=column, rows=rows[:SHOWN_ROWS], n_rows=len(rows), hint=ID_CHECK.hint)]


def _rows_with_hashes(part: pd.DataFrame, offset: int, column: str, suspects: np.ndarray) -> pd.Series:
    values = as_read_in_memory(part[[column]])[column].set_axis(pd.RangeIndex(offset, offset + len(part)))
    return values[np.isin(_hashes(values), suspects)]


def merge_problems(problems: list[Problem]) -> list[Problem]:
    """One problem per (column, rule, where): the partitions' rows joined (the first :data:`SHOWN_ROWS`
    kept) and counted."""
    merged: dict[tuple, Problem] = {}
    for problem in problems:
        key = (problem.column, problem.rule, problem.where)
        count = problem.n_rows if problem.n_rows is not None else len(problem.rows)
        if key not in merged:
            merged[key] = replace(problem, rows=tuple(problem.rows[:SHOWN_ROWS]), n_rows=count if problem.rows else
                                  problem.n_rows)
            continue
        seen = merged[key]
        if not problem.rows:
            continue
        merged[key] = replace(seen, rows=(seen.rows + tuple(problem.rows))[:SHOWN_ROWS],
                              n_rows=(seen.n_rows or 0) + count)
    return list(merged.values())


def assign_every_row(folder: RunFolder, draft: Manifest, model, sample: TableSample, client,
                     image_root: str, on_bad_image: str = "error") -> Manifest:
    """Assign every row of the table with ``model`` on the Dask ``client``, one ``assignments/`` file per
    partition written by the worker that assigned it; returns ``draft`` listing those files."""
    parts = sample.dataset.partitions()
    model_on_workers = dask.delayed(model)
    writes = [dask.delayed(_assign_and_write)(part, model_on_workers, offset, folder.url(assignments_part(number)),
                                              folder.storage_options, image_root, on_bad_image)
              for number, (part, offset) in enumerate(zip(parts, sample.offsets))]
    written = client.gather(client.compute(writes))
    draft = folder.record_written(draft, {assignments_part(number): (sha256, size)
                                          for number, (sha256, size, _) in enumerate(written)})
    assigned = sum(rows for _, _, rows in written)
    if assigned != sample.total_rows:
        raise RuntimeError(f"assigned {assigned} rows of {sample.total_rows}: the table changed while it ran")
    return draft


def _assign_and_write(part: pd.DataFrame, model, offset: int, uri: str, storage_options: dict | None,
                      image_root: str, on_bad_image: str) -> tuple[str, int, int]:
    assignments = assign_rows(as_read_in_memory(part), model, offset, image_root, on_bad_image)
    data = frame_to_parquet_bytes(assignments)
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    write_whole(fs, path, data)
    return hashlib.sha256(data).hexdigest(), len(data), len(assignments)


def sample_note(record: SampleRecord) -> str:
    """What the leaderboard and the summary say about a sampled run."""
    return f"trained on a sample of {record.rows:,} of {record.of_rows:,} rows (seed {record.seed})"
