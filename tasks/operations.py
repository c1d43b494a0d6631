"""Thin Prefect tasks for operating clusterflow: rerun, recluster, promotion."""
from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from clusterflow import promotion, recluster, rerun
from clusterflow.run_folder import Manifest, RunLock
from clusterflow.training import CandidateResult, CandidateSpec

IO = {"cache_policy": NO_CACHE, "retries": 2, "retry_delay_seconds": 2}


@task(**IO)
def load_cached_run(run_uri: str, storage_options: dict | None) -> rerun.CachedRun:
    return rerun.load_cached_run(run_uri, storage_options)


@task(cache_policy=NO_CACHE)
def plan_rerun(cached: rerun.CachedRun, k: list[int], model: str | None) -> list[CandidateSpec]:
    return rerun.rerun_specs(cached, k, model)


@task(**IO)
def write_rerun(cached: rerun.CachedRun, results: list[CandidateResult], lock: RunLock,
                storage_options: dict | None) -> Manifest:
    return rerun.write_rerun(cached, results, lock, storage_options)


@task(**IO)
def compare_with_promoted(run_uri: str, runs_root: str, dataset: str, tolerance: float,
                          storage_options: dict | None) -> recluster.ReclusterReport:
    return recluster.compare_with_promoted(run_uri, runs_root, dataset, recluster.PromotionPolicy(tolerance),
                                           storage_options)


@task(**IO)
def publish_recluster(report: recluster.ReclusterReport, lock: RunLock, storage_options: dict | None) -> Manifest:
    return recluster.publish_recluster(report, lock, storage_options)


@task(**IO)
def promote(run_uri: str, model_id: str, runs_root: str, dataset: str, reasons: list[str],
            storage_options: dict | None, lock: RunLock) -> promotion.Promotion:
    return promotion.promote(run_uri, model_id, runs_root=runs_root, dataset=dataset, reasons=reasons,
                             storage_options=storage_options, lock=lock)


@task(cache_policy=NO_CACHE)
def publish_recluster_artifact(report: recluster.ReclusterReport) -> None:
    """The comparison and decision as a markdown artifact, keyed by dataset (the UI keeps history)."""
    create_markdown_artifact(key=f"recluster-{report.dataset}", markdown=recluster.report_markdown(report),
                             description=f"Recluster of {report.dataset}: run {report.run_uri}")


@task(**IO)
def promoted_model_uri(runs_root: str, dataset: str, storage_options: dict | None) -> str:
    return promotion.promoted_model_uri(runs_root, dataset, storage_options)
