"""The stages of a `cluster` run as plain functions: load, prepare, publish.

The Prefect tasks in ``tasks/`` call these; nothing here knows about Prefect.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import time
import uuid
from dataclasses import dataclass, field
from importlib.metadata import version

import fsspec
import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from .algorithms import algorithms_for
from .blueprint import make_featurizer, make_reducer, modality_columns, weigh_blocks_by_structure
from .compute import SharedMatrices, fit_and_score_shared
from .errors import AllCandidatesFailedError
from .explain import column_reports, markdown_column_table
from .featurize_on_workers import transform_on_workers, worth_the_workers
from .inputs import SAMPLE_ROWS, RunInputs, check_input, load_input, preload_input  # noqa: F401  (the run's first stage)
from .modalities import MODALITIES
from .modalities.base import FeaturizeOptions
from .leaderboard import RANKED_BY, build_leaderboard, scoring_labels, top_model_id, why_top_model
from .model import ClusterModel
from .model_description import blueprint_file, blueprint_tree, markdown_tree
from .parameters import RunParameters, check_k_values
from .partition import Partition, default_k_values, partition_rows
from .run_folder import (ASSIGNMENTS, BLUEPRINT_FILE, DEFAULT_RUNS_ROOT, FEATURES_SAMPLE, LEADERBOARD, SCORING_LABELS,
                         FeatureCache, FeaturesRecord, InputRecord, Manifest, PartitionRecord, RunFolder, RunLock,
                         model_file, npy_bytes, sample_note)
from .storage import frame_to_parquet_bytes
from .training import CandidateResult, CandidateSpec, candidate_specs, fit_and_score

CACHE_FOLDER = ".cache"
LIBRARIES = ("clusterflow", "scikit-learn", "hdbscan", "dask", "distributed", "pandera", "pandas", "numpy", "prefect")


@dataclass
class PreparedData:
    """Featurizer and reducer fitted on the train rows, and the reduced matrices."""

    partition: Partition
    featurizer: object
    reducer: object
    X_train: np.ndarray
    X_validation: np.ndarray
    k_values: list[int]
    specs: list[CandidateSpec]
    featurized_width: int
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    block_structure: dict = field(default_factory=dict)  # see clusterflow.blueprint.weigh_blocks_by_structure


def dataset_name(data_uri: str) -> str:
    """A short slug for the dataset, from the file name (used in run ids and artifact keys)."""
    stem = data_uri.rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0]
    return re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "dataset"


def new_run_id(data_uri: str) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{dataset_name(data_uri)}-{stamp}-{uuid.uuid4().hex[:6]}"


def prepare_features(inputs: RunInputs, params: RunParameters, client=None) -> PreparedData:
    """Partition, check the cluster counts against the train rows, fit the featurizer and reducer.

    With a Dask ``client`` and enough validation rows (:func:`worth_the_workers`), the fitted
    featurizer and reducer transform the validation rows on the workers, partition by partition.
    """
    started = time.perf_counter()
    partition = partition_rows(len(inputs.frame), params.validation_fraction, params.max_validation_rows, params.seed)
    n_train = len(partition.train)
    k_values = check_k_values(params.k, n_train) if params.k else default_k_values(n_train)
    algorithms = algorithms_for(params.mode, params.algorithms)
    train, validation = inputs.frame.iloc[partition.train], inputs.frame.iloc[partition.validation]
    featurizer = make_featurizer(inputs.decisions, params.weights, featurize_options(params))
    F_train = featurizer.fit_transform(train)  # one pass over the train rows (images are read once)
    F_train, block_structure = weigh_blocks_by_structure(featurizer, F_train, params.seed)
    reducer = make_reducer(F_train.shape[1], params.max_components, params.seed)
    X_train = F_train if reducer == "passthrough" else reducer.fit_transform(F_train)
    if worth_the_workers(client, inputs.roles, len(validation)):
        X_validation = transform_on_workers(client, featurizer, reducer, validation)
    else:
        X_validation = featurizer.transform(validation)
        if reducer != "passthrough":
            X_validation = reducer.transform(X_validation)
    return PreparedData(partition, featurizer, reducer, np.ascontiguousarray(X_train), np.ascontiguousarray(X_validation),
                        k_values, candidate_specs(algorithms, k_values, params.seed), F_train.shape[1],
                        time.perf_counter() - started, block_structure=block_structure)


def featurize_options(params: RunParameters) -> FeaturizeOptions:
    """The featurizers' settings from the run parameters.

    Local paths (a text or image model folder, the cache) become absolute: a published model
    keeps them and must find them from any working directory.
    """
    text_model = params.text_model
    if text_model and os.path.isdir(text_model):
        text_model = os.path.abspath(text_model)
    image_model = params.image_model
    if image_model and os.path.isdir(image_model):
        image_model = os.path.abspath(image_model)
    return FeaturizeOptions(seed=params.seed, text_featurizer=params.text_featurizer, text_model=text_model,
                            text_backend=params.text_backend,
                            cache=params.cache and _absolute(params.cache), image_model=image_model,
                            on_bad_image=params.on_bad_image)


def block_summary(inputs: RunInputs, prepared: PreparedData) -> dict:
    """Per modality: its columns, featurized width, weight, target total variance, learned scale
    and what the modality reports of its fitted featurizer."""
    summary = {}
    for name, cols in modality_columns(inputs.decisions).items():
        block = prepared.featurizer.named_transformers_[name]
        scaler = block[-1]
        summary[name] = {"columns": cols, "width": int(scaler.n_features_in_),
                         "weight": scaler.total_variance / len(cols),
                         "total_variance": scaler.total_variance, "scale": scaler.scale_,
                         **prepared.block_structure.get(name, {})}
        if MODALITIES[name].describe_fitted:
            summary[name]["featurizer"] = MODALITIES[name].describe_fitted(block[0])
    return summary


def feature_cache(prepared: PreparedData) -> FeatureCache:
    """The reduced matrices and the partition, as the run folder keeps them under ``features/``."""
    return FeatureCache(prepared.partition, prepared.X_train, prepared.X_validation)


def full_matrix(prepared: PreparedData) -> np.ndarray:
    """The reduced matrix of every input row, in input order."""
    return feature_cache(prepared).full_matrix()


def fit_candidates(prepared: PreparedData, silhouette_sample: int, *, n_jobs: int | None = None,
                   client=None) -> list[CandidateResult]:
    """Fit and score every candidate in this process (``n_jobs`` joblib threads), or on the workers
    of a Dask ``client``; a failed candidate comes back as a failed result."""
    if client is not None:
        shared = SharedMatrices.scatter(client, prepared.X_train, prepared.X_validation, seed=prepared.specs[0].seed)
        return [fit_and_score_shared(spec, shared, silhouette_sample) for spec in prepared.specs]
    return Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(fit_and_score)(spec, prepared.X_train, prepared.X_validation, silhouette_sample=silhouette_sample)
        for spec in prepared.specs)


def rank_candidates(inputs: RunInputs, prepared: PreparedData, results: list[CandidateResult],
                    metric: str = "auto") -> tuple[pd.DataFrame, str, dict[str, ClusterModel]]:
    """The leaderboard ranked by ``metric``, the top model's id and every trained model, joined with the
    fitted featurizer."""
    trained = [r for r in results if r.ok]
    if not trained:
        raise AllCandidatesFailedError("every candidate failed:\n" + "\n".join(
            f"  {r.spec.model_id}: {r.error}" for r in results))
    board = build_leaderboard(results, modalities=list(modality_columns(inputs.decisions)), metric=metric)
    if inputs.sample is not None:
        said = sample_note(inputs.sample.record(prepared.specs[0].seed))
        board["note"] = [f"{note}; {said}" if note else said for note in board["note"].fillna("")]
    models = {r.spec.model_id: ClusterModel.from_fitted(prepared.featurizer, prepared.reducer, r.clusterer,
                                                        inputs.roles, inputs.id_column) for r in trained}
    return board, top_model_id(board, metric), models


def write_run_files(folder: RunFolder, run_id: str, inputs: RunInputs, prepared: PreparedData,
                    results: list[CandidateResult], params: RunParameters,
                    timings: dict[str, float] | None = None) -> Manifest:
    """Write models, leaderboard, assignments and feature cache; return the manifest listing them, not yet committed.

    ``timings`` (seconds: start-up, cluster, fan-out wall time, ...) go first in the
    manifest's ``timings_seconds``, before the stages timed here.

    The run becomes visible only when :func:`commit_run` writes the manifest, after
    every other file of the run (insights and report included) is in place.
    """
    started = time.perf_counter()
    board, top, models = rank_candidates(inputs, prepared, results, params.metric)
    reasons = {d.column: d.reason for d in inputs.decisions}
    files: dict[str, bytes | str] = {}
    for model_id, model in models.items():
        files.update({model_file(model_id, name): data for name, data in model.to_files().items()})
        files[model_file(model_id, BLUEPRINT_FILE)] = blueprint_file(model, model_id, reasons,
                                                                    len(prepared.partition.train))
    features = feature_cache(prepared)
    files[LEADERBOARD] = board.to_csv(index=False)
    files[SCORING_LABELS] = RunFolder.scoring_labels_file(scoring_labels(results))
    if inputs.sample is None:
        files[ASSIGNMENTS] = frame_to_parquet_bytes(models[top].assignments(inputs.frame, features.full_matrix()))
    else:  # every row is assigned on the cluster (large_tables.assign_every_row); the sample's rows are kept
        files[FEATURES_SAMPLE] = npy_bytes(inputs.sample.positions)
    files.update(features.files())
    draft = Manifest(
        run_id=run_id,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(),
        input=InputRecord(uri=inputs.data_uri, sha256=inputs.sha256, rows=inputs.table_rows,
                          columns=len(inputs.frame.columns)),
        roles=[d.as_dict() for d in inputs.decisions],
        dropped_columns=[d.as_dict() for d in inputs.decisions if d.role == "ignore"],
        columns=[r.as_dict() for r in column_reports(inputs.frame, inputs.decisions, prepared.featurizer)],
        id_column=inputs.id_column,
        parameters=params.model_dump(),
        k_values=prepared.k_values,
        algorithms=sorted({s.algorithm for s in prepared.specs}),
        partition=PartitionRecord(train_rows=len(prepared.partition.train),
                                  validation_rows=len(prepared.partition.validation), seed=params.seed),
        sample=None if inputs.sample is None else inputs.sample.record(params.seed),
        features=FeaturesRecord(featurized_width=prepared.featurized_width, reduced_width=prepared.X_train.shape[1],
                                reducer=type(prepared.reducer).__name__ if prepared.reducer != "passthrough" else None,
                                blocks=block_summary(inputs, prepared)),
        top_model=top,
        selection={"metric": params.metric, "ranked_by": RANKED_BY[params.metric],
                   "why": why_top_model(board, params.metric)},
        models=sorted(models),
        failed_models={r.spec.model_id: r.error for r in results if not r.ok},
        timings_seconds={**(timings or {}), "load_and_validate": inputs.seconds, "featurize": prepared.seconds,
                         "train_and_score": float(np.nansum([r.fit_seconds + r.score_seconds for r in results]))},
        versions={"python": platform.python_version(), **{lib: _version(lib) for lib in LIBRARIES}},
    )
    draft = folder.stage(draft, files)
    return draft.model_copy(update={"timings_seconds": {**draft.timings_seconds,
                                                        "write": time.perf_counter() - started}})


def commit_run(folder: RunFolder, draft: Manifest, lock: RunLock | None = None) -> Manifest:
    """Publish the run: write its manifest, the last write, with status 'complete'."""
    return folder.commit(draft, lock)


def _version(package: str) -> str | None:
    try:
        return version(package)
    except Exception:
        return None


def summary_markdown(manifest: Manifest, board: pd.DataFrame, blueprint: dict | None = None) -> str:
    """A short markdown summary of a published run (for the Prefect UI), with the top model's ``blueprint``."""
    top = board.iloc[0]
    dropped = "".join(f"\n- `{d['column']}`: {d['reason']}" for d in manifest.dropped_columns) or "\n- none"
    failed = "".join(f"\n- `{m}`: {e}" for m, e in manifest.failed_models.items()) or "\n- none"
    return (
        f"# clusterflow run `{manifest.run_id}`\n\n"
        f"Input `{manifest.input.uri}`: {manifest.input.rows:,} rows, "
        f"{manifest.input.columns} columns."
        + (f" Models {sample_note(manifest.sample)}." if manifest.sample else "") + "\n\n"
        f"Top model **{top['model_id']}**: {top['clusters']} clusters, silhouette {top['silhouette']:.3f} "
        f"(of {len(board)} candidates).\n\n"
        f"Dropped columns:{dropped}\n\nFailed candidates:{failed}\n\n"
        f"## Columns\n\n{markdown_column_table(manifest.columns)}\n"
        + (f"\n## Blueprint\n\n{markdown_tree(blueprint_tree(blueprint, max_columns=8))}" if blueprint else "")
    )


def run_folder_uri(out: str | None, run_id: str, root: str | None = None) -> str:
    """Where a run is published: ``out`` if given, else a new folder under ``root`` (``clusterflow-runs/``)."""
    return out or f"{(root or DEFAULT_RUNS_ROOT).rstrip('/')}/{run_id}"


def cache_uri(cache: str | None, run_uri: str) -> str:
    """The run store cache: ``cache`` if given, else ``.cache`` in the runs root (the run folder's parent)."""
    parent = run_uri.rstrip("/").rpartition("/")[0] or "."
    return _absolute(cache or f"{parent}/{CACHE_FOLDER}")


def _absolute(uri: str) -> str:
    protocol, _ = fsspec.core.split_protocol(uri)
    return os.path.abspath(uri) if protocol is None else uri


def to_json_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-safe dicts (NaN and NA become None)."""
    return json.loads(frame.to_json(orient="records"))
