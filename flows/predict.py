"""The `predict` flow: a published model + a new table -> assignments (Parquet)."""
from __future__ import annotations

from prefect import flow

from clusterflow.compute import dask_client
from clusterflow.predicting import should_partition
from tasks.predict import assign_by_partition, assign_in_memory, load_published_model


@flow(name="predict", flow_run_name="predict-{data}", log_prints=True)
def predict(model: str, data: str, out: str, blocksize: str | None = None, dask_address: str | None = None,
            storage_options: dict | None = None) -> str:
    """Assign clusters to every row of ``data``; ``blocksize`` (or a large file) scores over Dask partitions."""
    fitted = load_published_model(model, storage_options)
    if blocksize is None and not should_partition(data, storage_options):
        rows = assign_in_memory(fitted, data, out, storage_options)
    else:
        with dask_client(dask_address):
            rows = assign_by_partition(fitted, data, out, blocksize or "64MB", storage_options)
    print(f"assigned {rows:,} rows -> {out}")
    return out
