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
from dask.utils import parse_bytes
import numpy as np
import pandas as pd

from .errors import InputValidationError, Problem
from .inputs import GLOB_CHARACTERS, RunInputs
from .input_schema import ID_CHECK, MIN_ROWS, TABLE_HINTS
from .predicting import _infer_numbers, assign_rows, read_partitioned, row_offsets
from .roles import RoleDecision, infer_roles
from .run_folder import PARTITIONED_RUN_HINTS, Manifest, RunFolder, SampleRecord, assignments_part
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

    def estimated_rows(self, first_partition_rows: int) -> tuple[int, bool]:
        """The table's rows, and whether the count is exact: a Parquet dataset's from its files' footers,
        a CSV table's estimated from its bytes and the rows of its first partition."""
        fs, _ = fsspec.core.url_to_fs(self.uri, **(self.storage_options or {}))
        paths = [fsspec.core.url_to_fs(f, **(self.storage_options or {}))[1] for f in self.files]
        if self.format == "parquet":
            import pyarrow.parquet as pq

            rows = 0
            for path in paths:
                with fs.open(path, "rb") as f:
                    rows += pq.ParquetFile(f).metadata.num_rows
            return rows, True
        sizes = [fs.size(path) for path in paths]
        first_bytes = min(sizes[0], parse_bytes(BLOCKSIZE))
        return int(sum(sizes) * first_partition_rows / max(first_bytes, 1)), False

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
        return row_offsets(self.partition_rows)

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

    One pass over the table draws the sample, counts the rows and validates every partition,
    with the roles that the first partition's rows suggest; the roles are then decided on the
    sample, and only if they differ is the table validated again with them (a second pass).
    Returns the run's inputs: the sample as the frame (in table order), and the sample's
    description. Raises :class:`InputValidationError` with every problem of the whole table.
    """
    from .roles import load_roles_file
    from .validation import validate_input

    started = time.perf_counter()
    dataset = open_dataset(data_uri, storage_options)
    parts = dataset.partitions()
    overrides = load_roles_file(roles_uri) if roles_uri else None
    [(head, head_rows)] = dask.compute(dask.delayed(_head)(parts[0]))
    guessed = infer_roles(as_read_in_memory(head), overrides)
    del head
    estimate, exact = dataset.estimated_rows(head_rows)
    scans = scan_partitions(parts, guessed, draw_fraction(sample_rows, estimate, exact), seed, image_root,
                            on_bad_image)
    total = sum(scan.rows for scan in scans)
    if sum(len(scan.drawn) for scan in scans) < min(sample_rows, total):  # the row count was overestimated
        scans = [replace(scan, problems=old.problems, hashes=old.hashes) for scan, old in
                 zip(scan_partitions(parts, None, draw_fraction(sample_rows, total, True), seed), scans)]
    sample, frame = take_sample(dataset, scans, sample_rows)
    decisions = infer_roles(frame, overrides)
    if _roles(decisions) != _roles(guessed):
        scans = scan_partitions(parts, decisions, 0.0, seed, image_root, on_bad_image)
    problems = table_problems(parts, sample, scans, decisions)
    if problems:
        raise InputValidationError(problems)
    frame = validate_input(frame, decisions, image_root=image_root, on_bad_image=on_bad_image)
    return RunInputs(data_uri, frame, decisions, dataset.fingerprint(), time.perf_counter() - started, sample=sample)


HEAD_ROWS = 20_000  # rows of the first partition whose roles the one pass validates with
ESTIMATE_MARGIN = 1.5  # a CSV table's row count is estimated from its bytes: draw this much more, trim after


@dataclass(frozen=True)
class PartitionScan:
    """What one pass learns of a partition: its rows, its problems and id hashes, and the rows it drew.

    Row numbers (in ``problems`` and ``positions``) count from the partition's first row.
    """

    rows: int
    problems: list[Problem]
    hashes: dict[str, np.ndarray]
    drawn: pd.DataFrame  # the rows whose key fell under the draw fraction, as read
    positions: np.ndarray
    keys: np.ndarray


def _head(part: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    return part.head(HEAD_ROWS), len(part)


def _roles(decisions: list[RoleDecision]) -> dict[str, str]:
    return {d.column: d.role for d in decisions}


def draw_fraction(sample_rows: int, estimated_rows: int, exact: bool) -> float:
    """The key threshold under which a row is drawn: enough rows, with a margin, for ``sample_rows``
    to be kept (1.0, every row, when the table is not larger than the sample)."""
    wanted = sample_rows + 6 * np.sqrt(sample_rows) + 10
    return float(min(1.0, wanted * (1.0 if exact else ESTIMATE_MARGIN) / max(estimated_rows, 1)))


def row_keys(rows: int, seed: int, number: int) -> np.ndarray:
    """Seeded uniform keys of a partition's rows: the ``sample_rows`` smallest keys of the table are its sample."""
    return np.random.default_rng([seed, number]).random(rows)


def scan_partitions(parts: list, decisions: list[RoleDecision] | None, fraction: float, seed: int,
                    image_root: str = "", on_bad_image: str = "error") -> list[PartitionScan]:
    """One read of every partition: its row count, the rows drawn under ``fraction`` and, with
    ``decisions``, its problems and id hashes."""
    return list(dask.compute(*[dask.delayed(_scan_partition)(part, number, decisions, fraction, seed, image_root,
                                                             on_bad_image) for number, part in enumerate(parts)]))


def _scan_partition(part: pd.DataFrame, number: int, decisions: list[RoleDecision] | None, fraction: float,
                    seed: int, image_root: str, on_bad_image: str) -> PartitionScan:
    keys = row_keys(len(part), seed, number)
    positions = np.flatnonzero(keys < fraction)
    problems, hashes = ([], {}) if decisions is None else _partition_problems(part, decisions, image_root,
                                                                              on_bad_image)
    return PartitionScan(len(part), problems, hashes, part.iloc[positions], positions, keys[positions])


def take_sample(dataset: TableDataset, scans: list[PartitionScan], sample_rows: int
                ) -> tuple[TableSample, pd.DataFrame]:
    """The ``sample_rows`` drawn rows of smallest key (every row of a smaller table), in table order."""
    lengths = tuple(scan.rows for scan in scans)
    offsets = row_offsets(lengths)
    positions = np.concatenate([scan.positions + offset for scan, offset in zip(scans, offsets)])
    keys = np.concatenate([scan.keys for scan in scans])
    chosen = np.sort(np.argsort(keys, kind="stable")[:sample_rows])  # positions ascend with the concatenation
    frame = pd.concat([scan.drawn for scan in scans], ignore_index=True).iloc[chosen].reset_index(drop=True)
    return TableSample(dataset, positions[chosen], lengths), as_read_in_memory(frame)


def as_read_in_memory(frame: pd.DataFrame) -> pd.DataFrame:
    """CSV text columns as an in-memory read of the same rows gives them: numbers where every value
    parses, else pandas' string dtype (Parquet partitions already have their stored types)."""
    frame = _infer_numbers(frame)
    text = [name for name in frame.columns if frame[name].dtype == object]
    return frame.astype(dict.fromkeys(text, "str"))


def table_problems(parts: list, sample: TableSample, scans: list[PartitionScan],
                   decisions: list[RoleDecision]) -> list[Problem]:
    """Every broken rule of the whole table from the partitions' scans, rows numbered over the table.

    Id uniqueness spans partitions: each partition returned its ids' 64-bit hashes, and only
    rows whose hash repeats are read again to find the ids that really repeat.
    """
    offsets = sample.offsets
    problems = [_shifted(p, offset) for scan, offset in zip(scans, offsets) for p in scan.problems]
    for column in [d.column for d in decisions if d.role == "id"]:
        problems += _repeated_ids(parts, offsets, column, [scan.hashes[column] for scan in scans])
    problems = merge_problems(problems)
    if sample.total_rows < MIN_ROWS:
        rule = f"the table has fewer than {MIN_ROWS} rows"
        problems.insert(0, Problem(rule=rule, hint=TABLE_HINTS[rule]))
    return problems


def _shifted(problem: Problem, offset: int) -> Problem:
    return replace(problem, rows=tuple(int(row) + offset for row in problem.rows)) if problem.rows else problem


def _partition_problems(part: pd.DataFrame, decisions: list[RoleDecision], image_root: str,
                        on_bad_image: str) -> tuple[list[Problem], dict[str, np.ndarray]]:
    from .validation import validate_input

    part = as_read_in_memory(part).reset_index(drop=True)
    hashes = {d.column: _hashes(part[d.column]) for d in decisions if d.role == "id"}
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
    from .featurize_on_workers import threads_per_task

    parts = sample.dataset.partitions()
    model_on_workers = dask.delayed(model)
    threads = threads_per_task(client)
    writes = [dask.delayed(_assign_and_write)(part, model_on_workers, offset, folder.url(assignments_part(number)),
                                              folder.storage_options, image_root, on_bad_image, threads)
              for number, (part, offset) in enumerate(zip(parts, sample.offsets))]
    written = client.gather(client.compute(writes))
    draft = folder.record_written(draft, {assignments_part(number): (sha256, size)
                                          for number, (sha256, size, _) in enumerate(written)})
    assigned = sum(rows for _, _, rows in written)
    if assigned != sample.total_rows:
        raise RuntimeError(f"assigned {assigned} rows of {sample.total_rows}: the table changed while it ran")
    return draft


def _assign_and_write(part: pd.DataFrame, model, offset: int, uri: str, storage_options: dict | None,
                      image_root: str, on_bad_image: str, threads: int) -> tuple[str, int, int]:
    from .featurize_on_workers import worker_share_of_cores

    with worker_share_of_cores(threads):
        assignments = assign_rows(as_read_in_memory(part), model, offset, image_root, on_bad_image)
    data = frame_to_parquet_bytes(assignments)
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    write_whole(fs, path, data)
    return hashlib.sha256(data).hexdigest(), len(data), len(assignments)


def read_run_sample(manifest: Manifest, storage_options: dict | None = None) -> pd.DataFrame:
    """The rows a partitioned table's run trained and scored on, drawn again in one pass from its unchanged files
    (the keys are seeded, so the same files give the same rows)."""
    dataset = open_dataset(manifest.input.uri, storage_options)
    if dataset.fingerprint() != manifest.input.sha256:
        raise InputValidationError([Problem(
            rule=f"the partitioned table {manifest.input.uri} changed since the run (its file listing differs from "
                 "the manifest's)", where="DATA",
            hint="restore the original files; insights describe the rows the run clustered")])
    record, parts = manifest.sample, dataset.partitions()
    scans = scan_partitions(parts, None, draw_fraction(record.rows, record.of_rows, True), record.seed)
    if sum(len(scan.drawn) for scan in scans) < record.rows:  # a draw this unlucky is improbable, not impossible
        scans = scan_partitions(parts, None, 1.0, record.seed)
    return take_sample(dataset, scans, record.rows)[1]


def check_single_table_input(data_uri: str, command: str, storage_options: dict | None = None) -> None:
    """Refuse ``command`` (recluster) on a Parquet dataset folder or a glob of files."""
    from .inputs import is_partitioned_table

    if is_partitioned_table(data_uri, storage_options):
        raise InputValidationError([Problem(
            rule=f"{data_uri} is a partitioned table (a folder or a glob); `clusterflow {command}` takes one "
                 "table file", where="DATA", hint=PARTITIONED_RUN_HINTS[command])])

