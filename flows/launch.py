"""What the command line does before a flow: check every input and parameter, then start the flow.

The checks run before Prefect, Dask or any model is started (none of them is even
imported), so a mistake is refused in seconds and in one report. The table a `run`
validated here is handed to the flow in this process (:func:`clusterflow.inputs.preload_input`),
so it is not read or validated twice.
"""
from __future__ import annotations

import importlib
import os
import time
from dataclasses import replace

from clusterflow.errors import ClusterflowError, InputValidationError, Problem
from clusterflow.parameters import k_problems, parse_parameters


def split_names(text: str | None) -> list[str] | None:
    """``"kmeans, gmm"`` -> ``["kmeans", "gmm"]``; None stays None."""
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


def parse_weights(text: str | None) -> tuple[dict[str, float] | None, list[Problem]]:
    """``"numeric=1,categorical=2"`` -> weights, and a problem for each item that is not ``name=number``."""
    if text is None:
        return None, []
    weights, problems = {}, []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            problems.append(Problem(rule=f"{item!r} is not modality=number", where="--weights",
                                    hint="write weights like numeric=1,categorical=2"))
    return weights, problems


def _collect(problems: list[Problem], check, *args, where: str | None = None, **kwargs):
    """Run ``check``; its user errors join ``problems`` (and it returns None) so all are reported together.

    ``where`` names what was checked (e.g. ``RUN``) in problems that do not say it themselves.
    """
    try:
        return check(*args, **kwargs)
    except InputValidationError as exc:
        problems += [p if p.where or p.column or not where else replace(p, where=where) for p in exc.problems]
    except ClusterflowError as exc:
        if exc.exit_code != 2:
            raise
        problems.append(Problem(rule=str(exc), where=where))
    return None


def _raise_if_any(problems: list[Problem]) -> None:
    if problems:
        raise InputValidationError(problems)


def check_run(data: str, *, roles: str | None = None, out: str | None = None, algorithms: str | None = None,
              weights: str | None = None, **options) -> dict:
    """Check a `run` in full: parameters, the output folder and the table (read, roles, checks, images).

    Returns the `cluster` flow's keyword arguments; the validated table waits in this
    process for the flow. Raises :class:`InputValidationError` listing every problem.
    """
    from clusterflow.inputs import preload_input
    from clusterflow.partition import partition_rows
    from clusterflow.run_folder import RunFolder

    weight_values, problems = parse_weights(weights)
    names = split_names(algorithms)
    params = _collect(problems, parse_parameters, algorithms=names, weights=weight_values, **options)
    if out is not None and RunFolder(out).is_published():
        problems.append(Problem(rule=f"{out} already holds a published run; it is never overwritten", where="--out",
                                hint="choose another --out, or leave it out for a new folder"))
    image_root = options.get("image_root") if params is None else params.image_root
    on_bad_image = options.get("on_bad_image", "error") if params is None else params.on_bad_image
    sampling = {} if params is None else {"sample_rows": params.sample_rows, "seed": params.seed}
    inputs = _collect(problems, preload_input, data, roles, None, image_root, on_bad_image, where="DATA", **sampling)
    if inputs is not None and params is not None and params.k:
        split = partition_rows(len(inputs.frame), params.validation_fraction, params.max_validation_rows, params.seed)
        problems += k_problems(params.k, len(split.train))
    _raise_if_any(problems)
    return {"data": data, "roles": roles, "out": out, "algorithms": names, "weights": weight_values, **options}


def check_predict(model: str | None, data: str, *, out: str, dataset: str | None, runs_root: str | None,
                  blocksize: str | None, image_root: str | None, on_bad_image: str) -> dict:
    """Check a `predict`: the model is published, the table readable, the options valid."""
    from clusterflow.storage import check_readable

    problems = []
    if model is not None:
        from clusterflow.model import check_model

        _collect(problems, check_model, model, where="MODEL")
    _collect(problems, check_readable, data, where="DATA")
    if blocksize is not None:
        from dask.utils import parse_bytes

        try:
            parse_bytes(blocksize)
        except (ValueError, TypeError):
            problems.append(Problem(rule=f"{blocksize!r} is not a size", where="--blocksize",
                                    hint="write a size like 64MB"))
    _collect(problems, parse_parameters, image_root=image_root, on_bad_image=on_bad_image)
    _raise_if_any(problems)
    request = {"model": model, "data": data, "out": out, "blocksize": blocksize, "image_root": image_root,
               "on_bad_image": on_bad_image, "dataset": dataset}
    return request if runs_root is None else {**request, "runs_root": runs_root}


def check_rerun(run: str, k: list[int], model: str | None) -> None:
    """Check a `rerun`: the k values and that the run is published (the flow checks the rest against it)."""
    from clusterflow.run_folder import RunFolder, check_single_table_run

    problems = k_problems(k)
    manifest = _collect(problems, RunFolder(run).manifest, where="RUN")
    problems += _unknown_model(manifest, model)
    if manifest is not None:
        _collect(problems, check_single_table_run, manifest, "rerun")
    _raise_if_any(problems)
    RunFolder(run).ensure_unlocked()


def check_report(run: str, model: str | None, associations: str, projection: str):
    """Check a `report`: the run is published, the model is one of it, the options are known."""
    from clusterflow.run_folder import RunFolder

    problems = []
    if associations not in ("mutual_info", "cramers_v"):
        problems.append(Problem(rule=f"unknown measure {associations!r}", where="--associations",
                                hint="use mutual_info or cramers_v"))
    if projection not in ("pca", "tsne"):
        problems.append(Problem(rule=f"unknown projection {projection!r}", where="--projection",
                                hint="use pca or tsne"))
    folder = RunFolder(run)
    manifest = _collect(problems, folder.manifest, where="RUN")
    problems += _unknown_model(manifest, model)
    _raise_if_any(problems)
    return folder, manifest


def _unknown_model(manifest: dict | None, model: str | None) -> list[Problem]:
    if manifest is None or model is None or model in manifest.models:
        return []
    return [Problem(rule=f"run {manifest.run_id} has no model {model!r}", where="--model",
                    hint=f"choose one of {', '.join(manifest.models)}")]


def check_recluster(data: str, *, runs_root: str | None, dataset: str | None, k: list[int] | None,
                    algorithms: str | None, tolerance: float) -> dict:
    """Check a `recluster`: its parameters and that the table reads and validates."""
    from clusterflow.inputs import preload_input

    problems = []
    names = split_names(algorithms)
    _collect(problems, parse_parameters, k=k, algorithms=names)
    if not tolerance >= 0:
        problems.append(Problem(rule=f"{tolerance} is negative", where="--tolerance",
                                hint="give a silhouette difference >= 0, e.g. 0.05"))
    from clusterflow.inputs import is_partitioned_table

    if is_partitioned_table(data):
        from clusterflow.large_tables import check_single_table_input

        _collect(problems, check_single_table_input, data, "recluster")
    else:
        _collect(problems, preload_input, data, where="DATA")
    _raise_if_any(problems)
    request = {"data": data, "dataset": dataset, "k": k, "algorithms": names, "tolerance": tolerance}
    return request if runs_root is None else {**request, "runs_root": runs_root}


def check_notify(data: str, *, k: list[int] | None, algorithms: str | None) -> dict:
    names = split_names(algorithms)
    problems = []
    _collect(problems, parse_parameters, k=k, algorithms=names)
    _raise_if_any(problems)
    return {"k": k, "algorithms": names}


def require_prefect_server(command: str) -> None:
    if not os.environ.get("PREFECT_API_URL"):
        raise InputValidationError([Problem(
            rule=f"`clusterflow {command}` needs a Prefect server and PREFECT_API_URL is not set",
            hint="start one (`prefect server start --host 127.0.0.1`) and set "
                 "PREFECT_API_URL=http://127.0.0.1:4200/api")])


def run_cluster(request: dict, dask_address: str | None = None) -> str:
    """Run the `cluster` flow on a checked request; returns the run's URI."""
    return run_flow("flows.cluster", "cluster", **request, dask_address=dask_address)


def run_flow(module: str, name: str, **parameters):
    """Start Prefect (its temporary server when no PREFECT_API_URL is set) and run flow ``module:name``."""
    from flows.prefect_setup import quiet_user_error_tracebacks, start_temporary_server

    from clusterflow.timings import record_startup, seconds_since_process_start

    record_startup("command_start_and_checks", seconds_since_process_start())
    started = time.perf_counter()
    server = start_temporary_server()  # boots in its own process while the flow's modules import
    flow = getattr(importlib.import_module(module), name)
    quiet_user_error_tracebacks()
    record_startup("flow_imports", time.perf_counter() - started)
    waited = time.perf_counter()
    server.wait_until_ready()
    record_startup("prefect_server_wait", time.perf_counter() - waited)
    if server.startup_seconds is not None:
        record_startup("prefect_server_start", server.startup_seconds)
    return flow(**parameters)
