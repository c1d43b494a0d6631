"""How clusterflow runs in production: its deployments, served from one process, and the event that triggers reclustering.

``prefect.yaml`` declares the same deployments for ``prefect deploy`` (with a work
pool); ``tests/test_operations.py`` checks that the two agree.
"""
from __future__ import annotations

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger, emit_event
from prefect.schedules import Cron
from prefect.settings import get_current_settings

from clusterflow.errors import ClusterflowError
from clusterflow.run_folder import DEFAULT_RUNS_ROOT
from clusterflow.runs import dataset_name

DATA_ARRIVED = "clusterflow.data.arrived"
DATASET_RESOURCE = "clusterflow.dataset"
NIGHTLY_CRON = "0 2 * * *"  # UTC
TAGS = {"cluster-nightly": ["clusterflow", "trigger:schedule"],
        "recluster-on-new-data": ["clusterflow", "trigger:event"],
        "predict": ["clusterflow", "trigger:on-demand"]}

# Every templated parameter has a default: an event missing a key must still create a
# run (a template that fails to render creates none). A missing data URI renders as ""
# and the run fails visibly, naming the problem.
RECLUSTER_PARAMETERS = {
    "data": "{{ event.payload.data_uri | default('') }}",
    "dataset": "{{ event.payload.dataset | default(none) }}",
    "k": "{{ event.payload.k | default(none) }}",
    "algorithms": "{{ event.payload.algorithms | default(none) }}",
}
# One recluster at a time; events that arrive meanwhile wait their turn (ENQUEUE), none is dropped.
RECLUSTER_CONCURRENCY = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def data_arrived_trigger() -> DeploymentEventTrigger:
    """Fires once per ``clusterflow.data.arrived`` event of any dataset."""
    return DeploymentEventTrigger(
        name="data-arrived",
        expect={DATA_ARRIVED},
        match={"prefect.resource.id": f"{DATASET_RESOURCE}.*"},
        parameters=RECLUSTER_PARAMETERS,
    )


def build_deployments(runs_root: str = DEFAULT_RUNS_ROOT, nightly_data: str | None = None,
                      cron: str = NIGHTLY_CRON, dask_address: str | None = None) -> list[RunnerDeployment]:
    """The deployments: ``recluster-on-new-data`` and ``predict``, and ``cluster-nightly`` when
    there is a table to cluster every night (``nightly_data``)."""
    from flows.cluster import cluster
    from flows.predict import predict
    from flows.recluster import recluster

    compute = {"dask_address": dask_address} if dask_address else {}
    deployments = [
        recluster.to_deployment(
            "recluster-on-new-data", triggers=[data_arrived_trigger()], concurrency_limit=RECLUSTER_CONCURRENCY,
            parameters={"runs_root": runs_root, **compute}, tags=TAGS["recluster-on-new-data"],
            description=f"Recluster a dataset when a {DATA_ARRIVED} event says new data landed."),
        predict.to_deployment(
            "predict", parameters={"model": None, "runs_root": runs_root, **compute}, tags=TAGS["predict"],
            description="Score a table with the promoted model of its dataset (or a given model)."),
    ]
    if nightly_data:
        deployments.insert(0, cluster.to_deployment(
            "cluster-nightly", schedules=[Cron(cron, timezone="UTC")], parameters={"data": nightly_data, "runs_root": runs_root, **compute},
            tags=TAGS["cluster-nightly"], description=f"Cluster {nightly_data} on the schedule {cron}."))
    return deployments


def serve_all(runs_root: str = DEFAULT_RUNS_ROOT, nightly_data: str | None = None, cron: str = NIGHTLY_CRON,
              dask_address: str | None = None) -> None:
    """Serve every deployment from this process (schedules and triggers need a Prefect server)."""
    serve(*build_deployments(runs_root, nightly_data, cron, dask_address))


def emit_data_arrived(data_uri: str, dataset: str | None = None, k: list[int] | None = None,
                      algorithms: list[str] | None = None) -> str:
    """Tell the server that new data landed at ``data_uri``; returns the event id.

    Optional keys are left out of the payload when not given, so the deployment's defaults apply.
    """
    if not get_current_settings().api.url:  # else Prefect would hand it to a temporary server that forgets it
        raise ClusterflowError("no Prefect server to send the event to: set PREFECT_API_URL "
                               "(e.g. http://127.0.0.1:4200/api)")
    optional = {"dataset": dataset, "k": k, "algorithms": algorithms}
    payload = {"data_uri": data_uri, **{key: value for key, value in optional.items() if value}}
    name = dataset or dataset_name(data_uri)
    event = emit_event(event=DATA_ARRIVED, resource={"prefect.resource.id": f"{DATASET_RESOURCE}.{name}",
                                                     "prefect.resource.name": name},
                       payload=payload)
    return str(event.id)
