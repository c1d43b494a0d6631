"""The `rerun` flow: more cluster counts on a published run's cached features, republished into the run."""
from __future__ import annotations

from prefect import flow

from clusterflow.compute import SharedMatrices, dask_client
from clusterflow.run_folder import RunFolder
from clusterflow.runs import dataset_name
from tasks.cluster import publish_artifacts, train_candidates
from tasks.observe import label_run, run_name
from tasks.operations import load_cached_run, plan_rerun, write_rerun


@flow(name="rerun", flow_run_name=run_name("rerun", source="run"), log_prints=True)
def rerun(run: str, k: list[int], model: str | None = None, dask_address: str | None = None,
          storage_options: dict | None = None) -> str:
    """Train every k-taking algorithm of ``run`` (or only ``model``'s) for the cluster counts ``k``.

    No featurization: the fits use the run's cached reduced matrices. One change of a run at a
    time: the rerun holds the run's lock until it commits. Returns the run's URI.
    """
    with RunFolder(run, storage_options).locked("rerun") as lock:
        cached = load_cached_run(run, storage_options)
        dataset = cached.manifest.dataset or dataset_name(cached.manifest.input.uri)
        label_run(dataset)
        specs = plan_rerun(cached, k, model)
        print(f"rerun of {run}: training {', '.join(s.model_id for s in specs)} on the cached features")
        settings = cached.manifest.parameters
        with dask_client(dask_address) as client:
            shared = SharedMatrices.scatter(client, cached.features.X_train, cached.features.X_validation,
                                            max_broadcast_bytes=settings.get("max_broadcast_bytes"),
                                            seed=settings["seed"])
            results = train_candidates(specs, shared, settings["silhouette_sample"], f"fan-out-{dataset}")
        manifest = write_rerun(cached, results, lock, storage_options)
    publish_artifacts(run, manifest, storage_options)
    print(f"republished {run} (revision {manifest.revision}); top model {manifest.top_model}")
    return run
