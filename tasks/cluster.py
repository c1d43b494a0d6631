"""Thin Prefect tasks over the core stages of a `cluster` run.

Tasks hand each other in-process objects, so none caches on its inputs
(``NO_CACHE``): hashing a large frame costs more than the work it would save.
"""
from __future__ import annotations

from prefect import get_run_logger, task, unmapped
from prefect.artifacts import (create_link_artifact, create_markdown_artifact, create_progress_artifact,
                               create_table_artifact, update_progress_artifact)
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.states import State

from clusterflow import large_tables, report, runs
from clusterflow.compute import SharedMatrices, fit_and_score_shared
from clusterflow.modalities.image import image_root_of
from clusterflow.model import load_published_model
from clusterflow.model_description import run_blueprint
from clusterflow.run_folder import Manifest, RunFolder, RunLock
from clusterflow.training import CandidateResult, CandidateSpec
from schemas.parameters import RunParameters


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2,
      retry_condition_fn=lambda task, run, state: not _is_input_error(state))
def load_input(data_uri: str, roles_uri: str | None, storage_options: dict | None, image_root: str | None = None,
               on_bad_image: str = "error", sample_rows: int = runs.SAMPLE_ROWS, seed: int = 0) -> runs.RunInputs:
    return runs.load_input(data_uri, roles_uri, storage_options, image_root, on_bad_image, sample_rows=sample_rows,
                           seed=seed)


@task(cache_policy=NO_CACHE)
def prepare_features(inputs: runs.RunInputs, params: RunParameters, client=None) -> runs.PreparedData:
    return runs.prepare_features(inputs, params, client)


@task(cache_policy=NO_CACHE, task_run_name="train-{spec.model_id}")
def train_candidate(spec: CandidateSpec, shared: SharedMatrices, silhouette_sample: int) -> CandidateResult:
    """Fit and score one candidate on the Dask cluster; a failed fit fails this task."""
    result = fit_and_score_shared(spec, shared, silhouette_sample)
    if not result.ok:
        raise RuntimeError(f"{spec.model_id} failed: {result.error}")
    return result


def candidate_outcome(spec: CandidateSpec, future: PrefectFuture) -> CandidateResult:
    """The candidate's result, or a failed result carrying the task's error.

    Read from the future (the in-memory final state), not from the API: results are not persisted.
    """
    outcome = future.result(raise_on_failure=False)
    if isinstance(outcome, CandidateResult):
        return outcome
    return CandidateResult(spec, error=str(outcome).removeprefix(f"{spec.model_id} failed: "))


def train_candidates(specs: list[CandidateSpec], shared: SharedMatrices, silhouette_sample: int,
                     progress_key: str) -> list[CandidateResult]:
    """The fan-out: one ``train_candidate`` per spec on the Dask cluster, with a progress
    artifact and a log line as each candidate finishes. Failed candidates come back as
    failed results (a failed task alone would not fail the flow)."""
    logger = get_run_logger()
    futures = train_candidate.map(specs, unmapped(shared), silhouette_sample)
    progress = create_progress_artifact(0.0, key=progress_key, description=f"candidates trained of {len(specs)}")
    spec_of = {future.task_run_id: spec for spec, future in zip(specs, futures)}
    for done, future in enumerate(as_completed(futures), 1):
        future.wait()  # keeps the final state on the future: the API's copy may still say running
        update_progress_artifact(progress, 100.0 * done / len(specs))
        logger.info("%s %s (%d/%d candidates)", spec_of[future.task_run_id].model_id, future.state.name.lower(),
                    done, len(specs))
    return [candidate_outcome(spec, future) for spec, future in zip(specs, futures)]


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def write_run_files(run_uri: str, run_id: str, inputs: runs.RunInputs, prepared: runs.PreparedData,
                    results: list[CandidateResult], params: RunParameters, storage_options: dict | None,
                    timings: dict[str, float] | None = None) -> Manifest:
    return runs.write_run_files(RunFolder(run_uri, storage_options), run_id, inputs, prepared, results, params,
                                timings)


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def assign_every_row(run_uri: str, inputs: runs.RunInputs, manifest: Manifest, params: RunParameters, client,
                     storage_options: dict | None) -> Manifest:
    """A partitioned table: every row assigned by the top model on the Dask cluster, as the run's ``assignments/``."""
    folder = RunFolder(run_uri, storage_options)
    model = load_published_model(folder, manifest, manifest.top_model)
    return large_tables.assign_every_row(folder, manifest, model, inputs.sample, client,
                                         params.image_root or image_root_of(inputs.data_uri), params.on_bad_image)


@task(cache_policy=NO_CACHE)
def write_report(run_uri: str, inputs: runs.RunInputs, manifest: Manifest, storage_options: dict | None) -> Manifest:
    """Insights and report of the top model, written before the manifest: if this fails, nothing is published."""
    return report.add_report(RunFolder(run_uri, storage_options), inputs.frame, manifest)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def commit_run(run_uri: str, manifest: Manifest, lock: RunLock, storage_options: dict | None) -> Manifest:
    return runs.commit_run(RunFolder(run_uri, storage_options), manifest, lock)


@task(cache_policy=NO_CACHE)
def publish_artifacts(run_uri: str, manifest: Manifest, storage_options: dict | None) -> None:
    """The leaderboard (table) and a summary with the top model's blueprint (markdown), keyed by dataset so the UI
    keeps history."""
    folder = RunFolder(run_uri, storage_options)
    board = folder.leaderboard(manifest)
    key = runs.dataset_name(manifest.input.uri)
    create_table_artifact(key=f"leaderboard-{key}", table=runs.to_json_records(board),
                          description=f"Leaderboard of run {manifest.run_id} ({run_uri})")
    summary = runs.summary_markdown(manifest, board, run_blueprint(folder, manifest))
    create_markdown_artifact(key=f"run-summary-{key}", markdown=summary,
                             description=f"Summary of run {manifest.run_id}")


@task(cache_policy=NO_CACHE)
def publish_report_artifacts(run_uri: str, manifest: Manifest, storage_options: dict | None) -> None:
    """Facts on each top cluster (markdown) and a link to the report, keyed by dataset so the UI keeps history."""
    folder = RunFolder(run_uri, storage_options)
    key = runs.dataset_name(manifest.input.uri)
    create_markdown_artifact(key=f"clusters-{key}", markdown=report.cluster_summary_markdown(folder, manifest),
                             description=f"Clusters of the top model of run {manifest.run_id}")
    create_link_artifact(key=f"report-{key}", link=report.report_link(folder, manifest),
                         link_text=f"Report of run {manifest.run_id}",
                         description="Self-contained HTML: leaderboard, cluster insights, feature impact")


def _is_input_error(state: State) -> bool:
    from clusterflow.errors import InputValidationError

    return isinstance(state.result(raise_on_failure=False), InputValidationError)
