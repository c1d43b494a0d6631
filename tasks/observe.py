"""What a person sees in the Prefect UI: run names and tags that say dataset and trigger.

Deployments tag their runs ``trigger:<how>`` (schedule, event, on-demand); a flow
run without one was started by hand. Each flow adds ``dataset:<name>`` to its run
once it knows the dataset, and passes both tags on to its tasks and subflows.
"""
from __future__ import annotations

from typing import Callable

from prefect import get_client
from prefect.context import FlowRunContext
from prefect.runtime import flow_run

from clusterflow.runs import dataset_name

TRIGGER_PREFIX, DATASET_PREFIX = "trigger:", "dataset:"


def trigger(tags: list[str] | None = None) -> str:
    """How the current flow run was started, from its ``trigger:`` tag; ``manual`` without one."""
    found = [t.removeprefix(TRIGGER_PREFIX) for t in (flow_run.tags if tags is None else tags)
             if t.startswith(TRIGGER_PREFIX)]
    return found[0] if found else "manual"


def run_name(flow_name: str, source: str = "data") -> Callable[[], str]:
    """A ``flow_run_name`` callable: ``<flow>-<dataset>-<trigger>``, the dataset named by the
    ``dataset`` parameter or derived from the URI in parameter ``source``."""
    def name() -> str:
        parameters = flow_run.parameters
        dataset = parameters.get("dataset") or dataset_name(str(parameters.get(source) or ""))
        return f"{flow_name}-{dataset}-{trigger()}"

    return name


def label_run(dataset: str) -> list[str]:
    """Tag the current flow run with its dataset; returns the run's dataset and trigger tags
    (for ``with tags(...)`` around its tasks and subflows)."""
    run = FlowRunContext.get().flow_run
    labels = [f"{DATASET_PREFIX}{dataset}", f"{TRIGGER_PREFIX}{trigger(run.tags)}"]
    with get_client(sync_client=True) as client:
        client.update_flow_run(run.id, tags=sorted({*run.tags, *labels}))
    return labels
