"""The `predict` flow: a published model + a new table -> assignments (Parquet)."""
from __future__ import annotations

from prefect import flow

from clusterflow.compute import dask_client
from clusterflow.predicting import should_partition
from clusterflow.run_folder import DEFAULT_RUNS_ROOT
from clusterflow.runs import dataset_name
from tasks.observe import label_run, run_name
from tasks.operations import promoted_model_uri
from tasks.predict import assign_by_partition, assign_in_memory, load_published_model


@flow(name="predict", flow_run_name=run_name("predict"), log_prints=True)
def predict(model: str | None, data: str, out: str, blocksize: str | None = None, dask_address: str | None = None,
            storage_options: dict | None = None, image_root: str | None = None, on_bad_image: str = "error",
            dataset: str | None = None, runs_root: str = DEFAULT_RUNS_ROOT) -> str:
    """Assign clusters to every row of ``data``; ``blocksize`` (or a large file) scores over Dask partitions.

    Image paths resolve against ``image_root``, by default the folder of ``data``. Without a
    ``model``, the promoted model of ``dataset`` (default: the data file's name) under
    ``runs_root`` scores the rows.
    """
    dataset = dataset or dataset_name(data)
    label_run(dataset)
    if model is None:
        model = promoted_model_uri(runs_root, dataset, storage_options)
    fitted = load_published_model(model, storage_options)
    if blocksize is None and not should_partition(data, storage_options):
        rows = assign_in_memory(fitted, data, out, storage_options, image_root, on_bad_image)
    else:
        with dask_client(dask_address):
            rows = assign_by_partition(fitted, data, out, blocksize or "64MB", storage_options, image_root,
                                       on_bad_image)
    print(f"assigned {rows:,} rows -> {out}")
    return out
