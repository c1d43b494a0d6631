"""Score new tables with a published model: in memory, or over Dask partitions when large."""
from __future__ import annotations

import dask
import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd

from .errors import RunExistsError
from .modalities.image import image_root_of
from .model import ClusterModel
from .roles import RoleDecision
from .storage import frame_to_parquet_bytes, read_table, table_format, write_whole
from .validation import validate_input

PARTITIONED_ABOVE_BYTES = 256 * 2**20


def should_partition(data_uri: str, storage_options: dict | None = None) -> bool:
    """A Parquet dataset folder, a glob of files, and tables larger than :data:`PARTITIONED_ABOVE_BYTES`
    on storage are scored by partition."""
    from .inputs import is_partitioned_table

    if is_partitioned_table(data_uri, storage_options):
        return True
    fs, path = fsspec.core.url_to_fs(data_uri, **(storage_options or {}))
    return fs.size(path) > PARTITIONED_ABOVE_BYTES


def prepare_new_rows(model: ClusterModel, frame: pd.DataFrame, image_root: str, on_bad_image: str = "error",
                     min_rows: int | None = None) -> pd.DataFrame:
    """Validate new rows against the model's roles, with their image files (resolved under ``image_root``)."""
    decisions = [RoleDecision(c, r, "") for c, r in model.roles_.items() if r != "ignore"]
    return validate_input(frame, decisions, image_root=image_root, on_bad_image=on_bad_image, min_rows=min_rows)


def predict_file(model: ClusterModel, data_uri: str, out_uri: str, storage_options: dict | None = None,
                 image_root: str | None = None, on_bad_image: str = "error") -> int:
    """Assign every row of ``data_uri`` in memory; write one Parquet file in one write. Returns rows.

    Image paths resolve against ``image_root``, by default the new table's folder.
    """
    frame = prepare_new_rows(model, read_table(data_uri, storage_options), image_root or image_root_of(data_uri),
                             on_bad_image)
    assignments = model.assign(frame)
    fs, path = fsspec.core.url_to_fs(out_uri, **(storage_options or {}))
    write_whole(fs, path, frame_to_parquet_bytes(assignments))
    return len(assignments)


def read_partitioned(data_uri: str | list[str], blocksize: str | int, storage_options: dict | None = None,
                     fmt: str | None = None) -> dd.DataFrame:
    """A table (or a list of files of format ``fmt``) as a lazy Dask frame; CSV columns read as strings."""
    fmt = fmt or table_format(data_uri)
    options = {"storage_options": storage_options or {}}
    if fmt == "csv":
        return dd.read_csv(data_uri, blocksize=blocksize, assume_missing=True, dtype=object, **options)
    if fmt == "parquet":
        return dd.read_parquet(data_uri, split_row_groups="adaptive", blocksize=blocksize, **options)
    return dd.read_json(data_uri, lines=True, blocksize=blocksize, **options)


def row_offsets(lengths) -> list[int]:
    """The position in the whole table of each partition's first row, from the partitions' row counts."""
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist()


def predict_partitioned(model: ClusterModel, data_uri: str, out_uri: str, *, blocksize: str | int = "64MB",
                        storage_options: dict | None = None, image_root: str | None = None,
                        on_bad_image: str = "error") -> int:
    """Assign rows partition by partition on the current Dask client; write a Parquet dataset.

    Rows keep their 0-based position in the whole table (``row_id`` and error reports),
    so the output equals the in-memory path's. Returns the row count.
    """
    fs, path = fsspec.core.url_to_fs(out_uri, **(storage_options or {}))
    if fs.exists(path):
        raise RunExistsError(f"{out_uri} exists; partitioned predictions never overwrite: choose another --out")
    frame = _read_new_table(data_uri, blocksize, storage_options)
    lengths = frame.map_partitions(len).compute()
    offsets = row_offsets(lengths)
    image_root = image_root or image_root_of(data_uri)
    head = prepare_new_rows(model, _infer_numbers(frame.head(1, npartitions=-1)), image_root, on_bad_image)
    meta = model.assign(head).iloc[:0]
    assignments = frame.map_partitions(_assign_partition, dask.delayed(model), offsets, image_root, on_bad_image,
                                       meta=meta, align_dataframes=False)
    assignments.to_parquet(out_uri, write_index=False, storage_options=storage_options or {})
    return int(sum(lengths))


def _read_new_table(data_uri: str, blocksize: str | int, storage_options: dict | None) -> dd.DataFrame:
    """One table file, or the files of a Parquet dataset folder or a glob (in a stable order), as a lazy frame."""
    from .inputs import is_partitioned_table

    if not is_partitioned_table(data_uri, storage_options):
        return read_partitioned(data_uri, blocksize, storage_options)
    from .large_tables import open_dataset

    dataset = open_dataset(data_uri, storage_options)
    return read_partitioned(list(dataset.files), blocksize, storage_options, fmt=dataset.format)


def _assign_partition(part: pd.DataFrame, model: ClusterModel, offsets: list[int], image_root: str,
                      on_bad_image: str, partition_info: dict | None = None) -> pd.DataFrame:
    return assign_rows(part, model, offsets[partition_info["number"]] if partition_info else 0, image_root,
                       on_bad_image)


def assign_rows(part: pd.DataFrame, model: ClusterModel, offset: int, image_root: str,
                on_bad_image: str = "error") -> pd.DataFrame:
    """Validate and assign one partition whose first row is row ``offset`` of the whole table."""
    part = _infer_numbers(part).set_axis(pd.RangeIndex(offset, offset + len(part)))
    part = prepare_new_rows(model, part, image_root, on_bad_image)
    return model.assignments(part, model.transform(part), row_offset=offset)


def _infer_numbers(part: pd.DataFrame) -> pd.DataFrame:
    """Columns read as strings (object or pandas' string dtype) become numbers where every present value
    parses, as pandas infers."""
    converted = {}
    for name in part.columns:
        if pd.api.types.is_object_dtype(part[name]) or pd.api.types.is_string_dtype(part[name]):
            numbers = pd.to_numeric(part[name].astype(object), errors="coerce")  # NumPy dtypes, as read_csv
            if numbers.notna().sum() == part[name].notna().sum():
                converted[name] = numbers
    return part.assign(**converted)
