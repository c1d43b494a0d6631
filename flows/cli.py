"""The `clusterflow` command line.

Its run options are the fields of :class:`clusterflow.parameters.RunParameters` (flag,
default and help come from there). A user's mistake is reported in one paragraph and
exits 2; a bug shows its traceback and exits 1. Every input is checked before Prefect,
Dask or any model starts.
"""
from __future__ import annotations

import os
import re
import sys
from typing import Optional

import typer

from clusterflow.parameters import run_field

app = typer.Typer(name="clusterflow", help="Multimodal clustering as Prefect workflows.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)

RUNS_ROOT_HELP = "the folder (or fsspec URI) holding runs and dataset promotions (default: clusterflow-runs)"
DATA_HELP = ("CSV, Parquet, JSON Lines, JSON array or Excel (.xlsx); local path or fsspec URI (s3://...); "
             "a Parquet dataset folder or a quoted glob of CSVs ('data/*.csv') is read by partitions")
# Options taking several values after one flag (`--k 3 5 8`), as the command has always accepted.
MULTI_VALUE_OPTIONS = ("--k",)


def _option(name: str, *, flag: str | None = None, default=None, help: str | None = None, **extra):
    """A typer option for the run parameter ``name``: its flag, default and help from the parameters model."""
    field = run_field(name)
    if default is None and not field.is_required() and field.default_factory is None:
        default = field.default
    return typer.Option(default, flag or f"--{name.replace('_', '-')}", help=help or field.description, **extra)


def _k_option(help: str | None = None):
    return _option("k", help=help, metavar="K ...")


def _dask_option():
    return typer.Option(None, "--dask-address", help="an existing Dask scheduler (default: a local cluster)")


def _runs_root_option():
    return typer.Option(None, "--runs-root", help=RUNS_ROOT_HELP)


def _dataset_option(help: str = "default: the data file's name"):
    return typer.Option(None, "--dataset", help=help)


@app.command()
def run(
    data: str = typer.Argument(..., help=DATA_HELP),
    out: Optional[str] = typer.Option(None, "--out", help="run folder (default: clusterflow-runs/<run id>)"),
    roles: Optional[str] = typer.Option(None, "--roles", help="roles file (YAML or JSON, column: role)"),
    k: Optional[list[int]] = _k_option(),
    algorithms: Optional[str] = _option("algorithms", help="comma-separated: kmeans,gmm,ward,hdbscan "
                                                           "(default: all of the mode)"),
    mode: str = _option("mode"),
    metric: str = _option("metric"),
    seed: int = _option("seed"),
    validation_fraction: float = _option("validation_fraction"),
    sample_rows: int = _option("sample_rows"),
    weights: Optional[str] = _option("weights"),
    text_featurizer: str = _option("text_featurizer"),
    text_model: Optional[str] = _option("text_model", metavar="PATH_OR_NAME"),
    text_backend: str = _option("text_backend"),
    cache: Optional[str] = _option("cache", metavar="DIR"),
    image_root: Optional[str] = _option("image_root", metavar="DIR"),
    on_bad_image: str = _option("on_bad_image"),
    image_model: Optional[str] = _option("image_model", metavar="PATH"),
    dask_address: Optional[str] = _dask_option(),
) -> None:
    """Cluster a table and publish a run folder."""
    from flows.launch import check_run, run_cluster

    request = check_run(data, roles=roles, out=out, k=k, algorithms=algorithms, mode=mode, metric=metric, seed=seed,
                        validation_fraction=validation_fraction, sample_rows=sample_rows, weights=weights,
                        text_featurizer=text_featurizer, text_model=text_model, text_backend=text_backend, cache=cache,
                        image_root=image_root, on_bad_image=on_bad_image, image_model=image_model)
    run_uri = run_cluster(request, dask_address=dask_address)
    _print_columns(run_uri)
    _print_run(run_uri)


@app.command()
def inspect(
    data: str = typer.Argument(..., help=DATA_HELP),
    roles: Optional[str] = typer.Option(None, "--roles", help="roles file (YAML or JSON, column: role): its roles win"),
    write_roles: Optional[str] = typer.Option(None, "--write-roles", metavar="FILE",
                                              help="also write the roles as a YAML roles file to edit"),
) -> None:
    """Print every column's inferred role, why, and its featurization (no training)."""
    from clusterflow.explain import format_column_table, inspect_table, write_roles_file

    frame, reports = inspect_table(data, roles)
    print(f"{data}: {len(frame):,} rows, {len(frame.columns)} columns\n")
    print(format_column_table(reports))
    if write_roles:
        write_roles_file(write_roles, reports)
        print(f"\nRoles written to {write_roles}; edit them, then: clusterflow run {data} --roles {write_roles}")


@app.command()
def predict(
    model_or_data: list[str] = typer.Argument(..., metavar="[MODEL] DATA",
                                              help="MODEL: a run folder (its top model) or RUN/models/<model_id>; "
                                                   "default: the promoted model of the dataset. DATA: the table"),
    out: str = typer.Option(..., "--out", help="output Parquet file (a folder when partitioned)"),
    dataset: Optional[str] = _dataset_option("whose promoted model to use when no model is given "
                                             "(default: the data file's name)"),
    runs_root: Optional[str] = _runs_root_option(),
    blocksize: Optional[str] = typer.Option(None, "--blocksize", help="score over Dask partitions of this size "
                                                                      "(e.g. 64MB)"),
    dask_address: Optional[str] = _dask_option(),
    image_root: Optional[str] = _option("image_root", metavar="DIR"),
    on_bad_image: str = _option("on_bad_image"),
) -> None:
    """Assign clusters to a new table with a published model."""
    from flows.launch import check_predict, run_flow

    if len(model_or_data) > 2:
        raise typer.BadParameter(f"at most MODEL and DATA, got {len(model_or_data)} values", param_hint="[MODEL] DATA")
    model, data = (None, *model_or_data) if len(model_or_data) == 1 else model_or_data
    request = check_predict(model, data, out=out, dataset=dataset, runs_root=runs_root, blocksize=blocksize,
                            image_root=image_root, on_bad_image=on_bad_image)
    run_flow("flows.predict", "predict", **request, dask_address=dask_address)


@app.command()
def report(
    run: str = typer.Argument(..., help="a published run folder"),
    model: Optional[str] = typer.Option(None, "--model", help="a model of the run (default: its top model)"),
    associations: str = typer.Option("mutual_info", "--associations",
                                     help="association measure of the Feature Associations matrix: "
                                          "mutual_info or cramers_v"),
    projection: str = typer.Option("pca", "--projection", help="2-D projection of the Image Embeddings view: "
                                                               "pca or tsne"),
    map_projection: str = typer.Option("pca", "--map-projection", help="2-D projection of the Cluster map: pca "
                                                                       "(default), tsne, or umap (needs umap-learn)"),
) -> None:
    """(Re)build the insights and report of a finished run, no retraining."""
    from flows.launch import check_report

    from clusterflow.report import read_run_input, republish_report

    folder, manifest = check_report(run, model, associations, projection)
    with folder.locked("report") as lock:
        _, written = republish_report(folder, read_run_input(manifest), model, lock, association_method=associations,
                                      projection=projection, map_projection=map_projection)
    print(f"Insights: {folder.url(written.insights)}")
    print(f"Report: {folder.url(written.report)}")


@app.command()
def describe(
    run: str = typer.Argument(..., help="a published run folder"),
    model: Optional[str] = typer.Option(None, "--model", help="a model of the run (default: its top model)"),
) -> None:
    """Print a model's blueprint: per modality block its columns and featurizer, then the reducer and the
    clusterer."""
    from clusterflow.model_description import blueprint_tree, format_tree, run_blueprint
    from clusterflow.run_folder import RunFolder

    folder = RunFolder(run)
    print("\n".join(format_tree(blueprint_tree(run_blueprint(folder, folder.manifest(), model)))))


@app.command()
def rerun(
    run: str = typer.Argument(..., help="a published run folder"),
    k: list[int] = _k_option(help="the new cluster counts"),
    model: Optional[str] = typer.Option(None, "--model", help="only this model's algorithm (default: every "
                                                              "k-taking algorithm of the run)"),
    dask_address: Optional[str] = _dask_option(),
) -> None:
    """Train more cluster counts on a run's cached features."""
    from flows.launch import check_rerun, run_flow

    check_rerun(run, k, model)
    _print_run(run_flow("flows.rerun", "rerun", run=run, k=k, model=model, dask_address=dask_address))


@app.command()
def promote(
    run: str = typer.Argument(..., help="a published run folder"),
    model_id: str = typer.Argument(..., help="a model of the run"),
    runs_root: Optional[str] = typer.Option(None, "--runs-root", help="where promotions are kept (default: the "
                                                                      "folder holding RUN)"),
    dataset: Optional[str] = _dataset_option("default: the dataset the run recorded, else its input file's name"),
) -> None:
    """Make a model the promoted model of its dataset."""
    from clusterflow.promotion import pointer_uri, promote as promote_model, runs_root_of

    promotion = promote_model(run, model_id, runs_root=runs_root, dataset=dataset)
    print(f"{promotion.dataset}: promoted {promotion.model_id} of {promotion.run_uri} "
          f"({pointer_uri(runs_root or runs_root_of(run), promotion.dataset)})")


@app.command()
def recluster(
    data: str = typer.Argument(..., help=DATA_HELP),
    runs_root: Optional[str] = _runs_root_option(),
    dataset: Optional[str] = _dataset_option(),
    k: Optional[list[int]] = _k_option(),
    algorithms: Optional[str] = _option("algorithms", help="comma-separated: kmeans,gmm,ward,hdbscan"),
    tolerance: float = typer.Option(0.05, "--tolerance", help="promote unless the new silhouette is worse than "
                                                              "the promoted one by more than this"),
    dask_address: Optional[str] = _dask_option(),
) -> None:
    """Cluster new data, keep cluster ids stable, decide promotion."""
    from flows.launch import check_recluster, run_flow

    request = check_recluster(data, runs_root=runs_root, dataset=dataset, k=k, algorithms=algorithms,
                              tolerance=tolerance)
    _print_run(run_flow("flows.recluster", "recluster", **request, dask_address=dask_address))


@app.command()
def serve(
    runs_root: Optional[str] = _runs_root_option(),
    nightly_data: Optional[str] = typer.Option(None, "--nightly-data", help="a table to cluster on the nightly "
                                                                            "schedule (cluster-nightly)"),
    cron: str = typer.Option("0 2 * * *", "--cron", help="the nightly schedule (UTC)"),
    dask_address: Optional[str] = typer.Option(None, "--dask-address", help="run every deployment's compute on "
                                                                            "this Dask scheduler"),
) -> None:
    """Serve the deployments (nightly schedule, data-arrived trigger, predict) from this process; needs
    PREFECT_API_URL."""
    from flows.launch import require_prefect_server

    from clusterflow.run_folder import DEFAULT_RUNS_ROOT

    require_prefect_server("serve")
    from deployments.serving import serve_all

    serve_all(runs_root or DEFAULT_RUNS_ROOT, nightly_data, cron, dask_address)


@app.command("serve-model")
def serve_model(
    model: Optional[str] = typer.Argument(None, help="a run folder (its top model) or RUN/models/<model_id>"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="serve this dataset's promoted model instead, "
                                                                  "and follow its promotions"),
    runs_root: Optional[str] = _runs_root_option(),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (default: 127.0.0.1, this "
                                                         "machine only)"),
    port: int = typer.Option(8000, "--port"),
    token: Optional[str] = typer.Option(None, "--token", help="require `Authorization: Bearer TOKEN` on /predict "
                                                              "and /model (default: $CLUSTERFLOW_SERVE_TOKEN; "
                                                              "unset: no token)"),
    poll_seconds: float = typer.Option(2.0, "--poll-seconds", help="how often to look for a newly promoted model "
                                                                   "(with --dataset)"),
    image_root: Optional[str] = typer.Option(None, "--image-root", metavar="DIR",
                                             help="folder that image paths in requests are relative to (default: "
                                                  "image columns are refused)"),
) -> None:
    """Serve a model over HTTP: POST /predict assigns clusters to JSON records."""
    from clusterflow.errors import InputValidationError, Problem
    from clusterflow.run_folder import DEFAULT_RUNS_ROOT

    if (model is None) == (dataset is None):
        raise InputValidationError([Problem(rule="serve-model needs a model or --dataset NAME (not both)",
                                            hint="clusterflow serve-model RUN, or clusterflow serve-model --dataset NAME")])
    import uvicorn

    from clusterflow.serving import TOKEN_ENV, ModelSource, build_app
    source = ModelSource(model, runs_root=runs_root or DEFAULT_RUNS_ROOT, dataset=dataset, poll_seconds=poll_seconds)
    served = build_app(source, token=token or os.environ.get(TOKEN_ENV) or None, image_root=image_root)
    print(f"serving {source.current.model_uri} on http://{host}:{port} (POST /predict, GET /model, "
          f"GET /health)", file=sys.stderr, flush=True)
    uvicorn.run(served, host=host, port=port, loop="uvloop", http="httptools", log_level="warning", access_log=False)


@app.command()
def notify(
    data: str = typer.Argument(..., help="the new table's URI"),
    dataset: Optional[str] = _dataset_option(),
    k: Optional[list[int]] = _k_option(),
    algorithms: Optional[str] = _option("algorithms", help="comma-separated: kmeans,gmm,ward,hdbscan"),
) -> None:
    """Emit the event that new data landed (triggers a recluster); needs PREFECT_API_URL."""
    from flows.launch import check_notify, require_prefect_server

    request = check_notify(data, k=k, algorithms=algorithms)
    require_prefect_server("notify")
    from deployments.serving import DATA_ARRIVED, emit_data_arrived

    event_id = emit_data_arrived(data, dataset, request["k"], request["algorithms"])
    print(f"emitted {DATA_ARRIVED} for {data} (event {event_id})")


@app.command()
def demo(
    out: Optional[str] = typer.Option(None, "--out", help="run folder (default: clusterflow-runs/<run id>)"),
    rows: int = typer.Option(2000, "--rows", min=100, help="rows of the generated table"),
) -> None:
    """Generate a sample table with planted segments and cluster it."""
    from flows.launch import check_run, run_cluster

    from clusterflow.samples import agreement_with_planted, write_demo_table

    data_uri, labels = write_demo_table(rows)
    run_uri = run_cluster(check_run(data_uri, out=out))
    _print_run(run_uri)
    print(f"Adjusted Rand index of the top model vs the planted segments: {agreement_with_planted(run_uri, labels):.3f}")


def _print_columns(run_uri: str) -> None:
    from clusterflow.explain import format_column_table
    from clusterflow.run_folder import RunFolder

    print("\nColumns (role, why, featurization, features):")
    print(format_column_table(RunFolder(run_uri).manifest().columns))


def _print_run(run_uri: str) -> None:
    from clusterflow.leaderboard import format_leaderboard
    from clusterflow.run_folder import ASSIGNMENTS_DATASET, RunFolder

    folder = RunFolder(run_uri)
    manifest = folder.manifest()
    selection = manifest.selection or {}
    print(f"\nLeaderboard (best first, --metric {selection.get('metric', 'silhouette')}):")
    print(format_leaderboard(folder.leaderboard(manifest)))
    if manifest.sample:
        from clusterflow.run_folder import sample_note

        print(f"Models {sample_note(manifest.sample)}; every row assigned in {folder.url(ASSIGNMENTS_DATASET)}/")
    print(f"\nTop model: {manifest.top_model}")
    if selection.get("why"):
        print(f"Why: {selection['why']}")
    print(f"Run folder: {run_uri}")
    print(f"Report: {folder.url(manifest.report)}")


def expand_multi_value_options(argv: list[str]) -> list[str]:
    """``--k 3 5 8`` -> ``--k 3 --k 5 --k 8`` (click options take one value per flag)."""
    expanded, flag, count = [], None, 0
    for token in argv:
        if token in MULTI_VALUE_OPTIONS:
            flag, count = token, 0
        elif flag and re.fullmatch(r"[+-]?\d+", token):
            expanded += [flag] * (count > 0)
            count += 1
        else:
            flag = None
        expanded.append(token)
    return expanded


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 done, 2 a user's mistake, 1 an error)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar on every run
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from clusterflow.errors import ClusterflowError

    try:
        app(args=expand_multi_value_options(sys.argv[1:] if argv is None else argv), prog_name="clusterflow")
    except ClusterflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
