"""Build the insights and the report of a run's model and write them into its run folder.

Used twice: by the `cluster` flow before the manifest is committed, and by
``clusterflow report`` on a published run (another model, or a rebuild). Either way
it reads only what a run keeps: the input table, the published models and the
cached reduced features under ``features/``; nothing is retrained. Each file is
written in one call, and the manifest is never touched here.
"""
from __future__ import annotations

import io
import json
import os
import posixpath
import time

import joblib
import numpy as np
import pandas as pd

from ..cluster_map import check_projection, cluster_map
from ..errors import InputValidationError, Problem
from ..insights import ImageSource, compute_insights, insight_files
from ..insights.build import ModelInsights
from ..insights.images import thumbnail_uri
from ..modalities.image import image_root_of, prepare_image_columns
from ..model import MODEL_FILE, ClusterModel
from ..model_description import check_model_id, run_blueprint
from ..storage import RunFolder, content_hash, read_table
from .html import ReportImages, render_report

REPORT = "report.html"


def report_path(manifest: dict, model_id: str) -> str:
    """Where a model's report lives in the run folder: ``report.html`` for the top model."""
    return REPORT if model_id == manifest["top_model"] else f"reports/{model_id}.html"


def write_report(folder: RunFolder, frame: pd.DataFrame, manifest: dict, model_id: str | None = None,
                 map_projection: str = "pca", **options) -> dict:
    """Compute a model's insights and report and write them; return what to record in the manifest.

    Parameters
    ----------
    folder : RunFolder
        The run folder (models and ``features/`` already written).
    frame : DataFrame
        The run's input table.
    manifest : dict
        The run's manifest (written or not yet).
    model_id : str, optional
        Default: the run's top model.
    map_projection : {"pca", "tsne", "umap"}, default="pca"
        The 2-D projection of the Cluster map (UMAP needs umap-learn).
    **options
        Passed to :func:`clusterflow.insights.compute_insights` (``association_method``, ``projection``, ...).

    Returns
    -------
    dict
        ``{"report": path, "insights": folder, "seconds": float}``, paths relative to the run folder.
    """
    started = time.perf_counter()
    model_id = model_id or manifest["top_model"]
    check_model_id(manifest, model_id)
    check_projection(map_projection)  # before the slow part
    model: ClusterModel = joblib.load(io.BytesIO(folder.get(f"models/{model_id}/{MODEL_FILE}")))
    blueprint = run_blueprint(folder, manifest, model_id, model)  # before the insights use the model
    X, validation = cached_features(folder)
    source = ImageSource(storage_options=folder.storage_options)  # the frame holds resolved image URIs
    seed = manifest["parameters"]["seed"]
    insights = compute_insights(model, frame, X, validation, model_id=model_id, source=source,
                                random_state=seed, **options)
    path = report_path(manifest, model_id)
    board = pd.read_csv(io.BytesIO(folder.get("leaderboard.csv")))
    href = posixpath.relpath("insights", posixpath.dirname(path) or ".")
    html = render_report(manifest, board, insights, report_images(insights, source), href, blueprint=blueprint,
                         cluster_map=cluster_map(model, frame, X, projection=map_projection, random_state=seed))
    for name, data in insight_files(insights).items():
        folder.put(f"insights/{model_id}/{name}", data)
    folder.put(path, html)
    return {"report": path, "insights": f"insights/{model_id}", "seconds": time.perf_counter() - started}


TOP_MODELS_REPORTED = 3


def add_report(folder: RunFolder, frame: pd.DataFrame, manifest: dict, top: int = TOP_MODELS_REPORTED,
               **options) -> dict:
    """Write the insights and reports of the ``top`` best models; return the manifest recording them.

    The top model's report is ``report.html``; the others' are under ``reports/``. The
    manifest is returned, not written: the caller commits it last.
    """
    scored = pd.read_csv(io.BytesIO(folder.get("leaderboard.csv")))
    scored = scored[(scored["status"] == "ok") & scored["silhouette"].notna()]["model_id"].tolist()
    model_ids = [manifest["top_model"]] + [m for m in scored if m != manifest["top_model"]][: top - 1]
    written = {model_id: write_report(folder, frame, manifest, model_id, **options) for model_id in model_ids}
    first = written[manifest["top_model"]]
    timings = {**manifest["timings_seconds"],
               "insights_and_report": sum(w["seconds"] for w in written.values())}
    return {**manifest, "report": first["report"], "insights": first["insights"],
            "model_reports": {model_id: w["report"] for model_id, w in written.items()}, "timings_seconds": timings}


def cluster_summary_markdown(folder: RunFolder, manifest: dict) -> str:
    """A few facts per cluster of the top model (size, defining features), from its published insights."""
    document = json.loads(folder.get(f"{manifest['insights']}/insights.json"))
    lines = "".join(f"\n- {sentence}" for sentence in document["summary"])
    return (f"# Clusters of run `{manifest['run_id']}`\n\nTop model **{document['model_id']}**, clusters by size:\n"
            f"{lines}\n\nThe full report: `{folder.url(manifest['report'])}`\n")


def report_link(folder: RunFolder, manifest: dict) -> str:
    """A URL of the run's report (``file://`` for a local run folder)."""
    uri = folder.url(manifest["report"])
    return uri if "://" in uri else "file://" + os.path.abspath(uri)


def cached_features(folder: RunFolder) -> tuple[np.ndarray, np.ndarray]:
    """The reduced matrix of every input row (table order) and the validation positions, from ``features/``."""
    train = np.load(io.BytesIO(folder.get("features/train.npy")))
    validation = np.load(io.BytesIO(folder.get("features/validation.npy")))
    partition = np.load(io.BytesIO(folder.get("features/partition.npz")))
    X = np.empty((len(train) + len(validation), train.shape[1]))
    X[partition["train"]], X[partition["validation"]] = train, validation
    return X, partition["validation"]


def read_run_input(manifest: dict, storage_options: dict | None = None) -> pd.DataFrame:
    """The run's input table, checked against the content hash in its manifest.

    Image paths become URIs under the run's image root, checked, as the run resolved them.
    """
    uri, expected = manifest["input"]["uri"], manifest["input"]["sha256"]
    if content_hash(uri, storage_options) != expected:
        raise InputValidationError([Problem(
            rule=f"the input table {uri} changed since the run (its SHA-256 differs from the manifest's)",
            hint="restore the original table; insights describe the rows the run clustered")])
    frame = read_table(uri, storage_options)
    parameters = manifest["parameters"]
    images = [r["column"] for r in manifest["roles"] if r["role"] == "image"]
    frame, problems = prepare_image_columns(frame, images, parameters.get("image_root") or image_root_of(uri),
                                            parameters.get("on_bad_image", "error"))
    if problems:
        raise InputValidationError(problems)
    return frame


def report_images(insights: ModelInsights, source: ImageSource) -> ReportImages:
    """Thumbnails of every image the report shows, and larger copies for the activation maps."""
    rows: dict[int, str] = {}
    for profile in insights.profiles.values():
        if profile["kind"] == "image":
            for key, stats in profile["stats"].items():
                rows.update({e["row"]: e["path"] for e in stats.get("examples", [])})
    if insights.embedding is not None:
        rows.update(zip(insights.embedding["row"].tolist(), insights.embedding["path"].tolist()))
    large = {m.row: m.path for m in insights.activation_maps}
    return ReportImages({row: _data_uri(source, path, 96) for row, path in rows.items()},
                        {row: _data_uri(source, path, 220) for row, path in large.items()})


def _data_uri(source: ImageSource, path: str, size: int) -> str | None:
    try:
        return thumbnail_uri(source.open(path), size)
    except OSError:  # moved or unreadable since the run: the report shows the path instead
        return None
