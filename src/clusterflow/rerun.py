"""Rerun: train more cluster counts on a published run's cached features.

Nothing is featurized or reduced again: the run's reduced train and validation
matrices (``features/``) are the input of the new fits, and the fitted featurizer
and reducer come from a model the run already published. The new models join the
run folder, and the leaderboard, assignments and manifest are republished as the
run's next revision, committed only if no other change landed meanwhile (the caller
holds the run's lock: :meth:`RunFolder.locked`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from .parameters import check_k_values

from .algorithms import REGISTRY
from .errors import InputValidationError, Problem
from .leaderboard import RANKED_BY, extend_leaderboard, merged_scoring_labels, top_model_id, why_top_model
from .model import ROW_ID, ClusterModel, load_published_model
from .model_description import blueprint_file
from .run_folder import (ASSIGNMENTS, BLUEPRINT_FILE, LEADERBOARD, SCORING_LABELS, FeatureCache, Manifest,
                         RerunRecord, RunFolder, RunLock, check_single_table_run, model_file)
from .storage import frame_to_parquet_bytes
from .training import CandidateResult, CandidateSpec


@dataclass
class CachedRun:
    """What a rerun needs from a published run: its manifest, leaderboard and cached features."""

    uri: str
    manifest: Manifest
    leaderboard: pd.DataFrame
    features: FeatureCache
    featurizer: object
    reducer: object
    row_ids: pd.DataFrame
    scoring_labels: pd.DataFrame | None  # the models' labels of the scoring rows, by row key (None: not kept)


def load_cached_run(run_uri: str, storage_options: dict | None = None) -> CachedRun:
    """Read a published run's manifest, leaderboard, feature cache and fitted featurizer + reducer (all verified)."""
    folder = RunFolder(run_uri, storage_options)
    manifest = folder.manifest()
    check_single_table_run(manifest, "rerun")
    any_model = load_published_model(folder, manifest, manifest.top_model)
    row_ids = folder.assignments(manifest, columns=[manifest.id_column or ROW_ID])
    return CachedRun(run_uri, manifest, folder.leaderboard(manifest), folder.features(manifest),
                     any_model.featurizer, any_model.reducer, row_ids, folder.scoring_labels(manifest))


def rerun_specs(cached: CachedRun, k_values: list[int], model_id: str | None = None) -> list[CandidateSpec]:
    """The candidates of a rerun: the new ``k_values`` for ``model_id``'s algorithm, or for every
    k-taking algorithm of the run. Models the run already has are not trained again."""
    k_values = check_k_values(k_values, len(cached.features.partition.train))
    manifest = cached.manifest
    if model_id is not None:
        known = cached.leaderboard.set_index("model_id")
        if model_id not in known.index:
            raise InputValidationError([Problem(rule=f"run {manifest.run_id} has no model {model_id!r}",
                                                hint=f"choose one of {', '.join(known.index)}")])
        algorithms = [known.loc[model_id, "algorithm"]]
    else:
        algorithms = manifest.algorithms
    algorithms = [a for a in algorithms if REGISTRY[a].takes_k]
    if not algorithms:
        raise InputValidationError([Problem(rule=f"{model_id or 'the run'} has no algorithm that takes a cluster "
                                                 "count", hint="rerun a k-means, Gaussian mixture or Ward model")])
    seed = manifest.parameters["seed"]
    specs = [CandidateSpec(a, k, seed) for a in algorithms for k in k_values]
    new = [s for s in specs if s.model_id not in set(cached.leaderboard["model_id"])]
    if not new:
        raise InputValidationError([Problem(rule=f"the run already has every requested model "
                                                 f"({', '.join(s.model_id for s in specs)})",
                                            hint="give other k values")])
    return new


def write_rerun(cached: CachedRun, results: list[CandidateResult], lock: RunLock,
                storage_options: dict | None = None) -> Manifest:
    """Publish the rerun's models into the run as its next revision: model files, then leaderboard and
    assignments, then the manifest (only if the run is still at the revision the rerun read). Returns it."""
    folder = RunFolder(cached.uri, storage_options)
    manifest = cached.manifest
    trained = {r.spec.model_id: ClusterModel.from_fitted(cached.featurizer, cached.reducer, r.clusterer,
                                                         manifest.role_of, manifest.id_column)
               for r in results if r.ok}
    files: dict[str, bytes | str] = {model_file(model_id, name): data for model_id, model in trained.items()
                                     for name, data in model.to_files().items()}
    reasons = {d["column"]: d["reason"] for d in manifest.roles}
    train_rows = len(cached.features.X_train)
    files.update({model_file(model_id, BLUEPRINT_FILE): blueprint_file(model, model_id, reasons, train_rows)
                  for model_id, model in trained.items()})
    metric = manifest.parameters.get("metric", "silhouette")  # runs published before the metric existed
    labels = merged_scoring_labels(cached.scoring_labels, results)
    board = extend_leaderboard(cached.leaderboard, results, metric, labels)
    top = top_model_id(board, metric)
    files[LEADERBOARD] = board.to_csv(index=False)
    if labels is not None:
        files[SCORING_LABELS] = RunFolder.scoring_labels_file(labels)
    if top != manifest.top_model:  # a new model, or an earlier one that agrees more with the new ones
        top_model = trained[top] if top in trained else load_published_model(folder, manifest, top)
        files[ASSIGNMENTS] = frame_to_parquet_bytes(top_model.assignments(cached.row_ids,
                                                                          cached.features.full_matrix()))
    failed = {r.spec.model_id: r.error for r in results if not r.ok}
    record = RerunRecord(at=dt.datetime.now(dt.timezone.utc).isoformat(),
                         k_values=sorted({r.spec.k for r in results}),
                         algorithms=sorted({r.spec.algorithm for r in results}),
                         added_models=sorted(trained), failed_models=failed, top_model_before=manifest.top_model)
    draft = manifest.next_revision(
        top_model=top,
        selection={"metric": metric, "ranked_by": RANKED_BY[metric], "why": why_top_model(board, metric)},
        models=sorted({*manifest.models, *trained}),
        k_values=sorted({*manifest.k_values, *(r.spec.k for r in results)}),
        failed_models={**manifest.failed_models, **failed},
        reruns=[*manifest.reruns, record],
    )
    return folder.commit(folder.stage(draft, files), lock)
