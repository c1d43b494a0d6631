"""The `cluster` flow: load -> validate -> featurize -> fan-out on Dask -> leaderboard -> publish."""
from __future__ import annotations

import time

from prefect import flow

from clusterflow import runs
from clusterflow.compute import SharedMatrices, featurizing_uses_dask, starting_dask_client
from clusterflow.run_folder import RunFolder
from clusterflow.timings import take_startup_costs
from schemas.parameters import parse_parameters, run_field
from tasks.cluster import (assign_every_row, commit_run, load_input, prepare_features, publish_artifacts,
                           publish_report_artifacts, train_candidates, write_report, write_run_files)
from tasks.observe import label_run, run_name


@flow(name="cluster", flow_run_name=run_name("cluster"), log_prints=True)
def cluster(
    data: str,
    roles: str | None = None,
    k: list[int] | None = run_field("k"),
    algorithms: list[str] | None = run_field("algorithms"),
    mode: str = run_field("mode"),
    metric: str = run_field("metric"),
    out: str | None = None,
    runs_root: str | None = None,
    dataset: str | None = None,
    seed: int = run_field("seed"),
    validation_fraction: float = run_field("validation_fraction"),
    sample_rows: int = run_field("sample_rows"),
    weights: dict[str, float] | None = None,
    text_featurizer: str = run_field("text_featurizer"),
    text_model: str | None = run_field("text_model"),
    text_backend: str = run_field("text_backend"),
    cache: str | None = run_field("cache"),
    image_root: str | None = run_field("image_root"),
    on_bad_image: str = run_field("on_bad_image"),
    image_model: str | None = run_field("image_model"),
    dask_address: str | None = None,
    max_broadcast_bytes: int | None = run_field("max_broadcast_bytes"),
    storage_options: dict | None = None,
) -> str:
    """Cluster the table at ``data`` and publish a run folder; returns the run's URI.

    The run parameters' defaults, rules and descriptions are those of
    :class:`clusterflow.parameters.RunParameters`; all are checked before any work.

    The run folder is ``out``, else a new folder under ``runs_root`` (default ``clusterflow-runs``).
    ``dataset`` names the data in run names, tags and artifact keys (default: the file's name).
    """
    dataset = dataset or runs.dataset_name(data)
    label_run(dataset)
    run_id = runs.new_run_id(data)
    run_uri = runs.run_folder_uri(out, run_id, runs_root)
    params = parse_parameters(k=k, algorithms=algorithms, mode=mode, metric=metric, seed=seed,
                              validation_fraction=validation_fraction, sample_rows=sample_rows, weights=weights,
                              max_broadcast_bytes=max_broadcast_bytes,
                              text_featurizer=text_featurizer, text_model=text_model, text_backend=text_backend,
                              cache=runs.cache_uri(cache, run_uri), image_root=image_root,
                              on_bad_image=on_bad_image, image_model=image_model)
    folder = RunFolder(run_uri, storage_options)
    folder.ensure_unpublished()

    with folder.locked("run") as lock:
        inputs = load_input(data, roles, storage_options, params.image_root, params.on_bad_image, params.sample_rows,
                            params.seed)
        with starting_dask_client(dask_address, rows=inputs.table_rows) as starting:  # starts while featurizing
            # large image and text columns are featurized on the cluster
            featurizing_client = starting.result() if featurizing_uses_dask(inputs.roles, len(inputs.frame)) else None
            prepared = prepare_features(inputs, params, featurizing_client)
            client = starting.result()
            shared = SharedMatrices.scatter(client, prepared.X_train, prepared.X_validation,
                                            max_broadcast_bytes=params.max_broadcast_bytes, seed=params.seed)
            fan_out_started = time.perf_counter()
            results = train_candidates(prepared.specs, shared, params.silhouette_sample,
                                       f"fan-out-{dataset}")
            timings = {**take_startup_costs(), **starting.timings(), "fan_out": time.perf_counter() - fan_out_started}
            manifest = write_run_files(run_uri, run_id, inputs, prepared, results, params, storage_options, timings)
            if inputs.sample is not None:
                manifest = assign_every_row(run_uri, inputs, manifest, params, client, storage_options)
        manifest = write_report(run_uri, inputs, manifest, storage_options)
        manifest = commit_run(run_uri, manifest, lock, storage_options)
    publish_artifacts(run_uri, manifest, storage_options)
    publish_report_artifacts(run_uri, manifest, storage_options)
    return run_uri
