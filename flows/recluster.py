"""The `recluster` flow: cluster new data, match its clusters to the promoted model's, decide promotion."""
from __future__ import annotations

from prefect import flow, tags

from clusterflow.errors import InputValidationError, Problem
from clusterflow.large_tables import check_single_table_input
from clusterflow.promotion import promotion_lock
from clusterflow.run_folder import DEFAULT_RUNS_ROOT, RunFolder, lock_seconds
from clusterflow.runs import dataset_name
from flows.cluster import cluster
from tasks.observe import label_run, run_name
from tasks.operations import compare_with_promoted, promote, publish_recluster, publish_recluster_artifact


@flow(name="recluster", flow_run_name=run_name("recluster"), log_prints=True)
def recluster(
    data: str,
    runs_root: str = DEFAULT_RUNS_ROOT,
    dataset: str | None = None,
    k: list[int] | None = None,
    algorithms: list[str] | None = None,
    mode: str = "comprehensive",
    tolerance: float = 0.05,
    dask_address: str | None = None,
    storage_options: dict | None = None,
) -> str:
    """Run `cluster` on ``data`` under ``runs_root``, compare with the dataset's promoted model and
    promote the new top model unless its silhouette is worse by more than ``tolerance``.

    Clusters that persist keep their ids in the new run (its assignments and top model).
    ``dataset`` defaults to the data file's name. Returns the new run's URI.
    """
    if not data:
        raise InputValidationError([Problem(rule="no data URI to recluster",
                                            hint="the clusterflow.data.arrived event needs payload.data_uri")])
    check_single_table_input(data, "recluster", storage_options)  # before a whole run that could not be compared
    dataset = dataset or dataset_name(data)
    with tags(*label_run(dataset)):
        run_uri = cluster(data=data, k=k, algorithms=algorithms, mode=mode, runs_root=runs_root, dataset=dataset,
                          dask_address=dask_address, storage_options=storage_options)
    # One recluster of a dataset compares with the promoted model and replaces it at a time: the
    # next one compares with the model this one promotes, and new cluster ids are never handed out twice.
    # Unattended, it waits as long as a lock can be held rather than leave its run uncompared.
    with promotion_lock(runs_root, dataset, "recluster", storage_options, wait=lock_seconds()) as dataset_lock:
        with RunFolder(run_uri, storage_options).locked("recluster") as lock:
            report = compare_with_promoted(run_uri, runs_root, dataset, tolerance, storage_options)
            publish_recluster(report, lock, storage_options)
        if report.promote:
            promote(run_uri, report.model_id, runs_root, dataset, report.reasons, storage_options, dataset_lock)
    publish_recluster_artifact(report)
    print(f"{dataset}: {report.model_id} of {run_uri} {'promoted' if report.promote else 'not promoted'} "
          f"({'; '.join(report.reasons)})")
    return run_uri
