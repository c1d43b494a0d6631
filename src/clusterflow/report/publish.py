"""Build the insights and the report of a run's model and write them into its run folder.

Used twice: by the `cluster` flow before the manifest is committed, and by
``clusterflow report`` on a published run (another model, or a rebuild), which commits
them as the run's next revision. Either way it reads only what a run keeps, verified
against the manifest: the input table, the published models and the cached reduced
features under ``features/``; nothing is retrained.
"""
from __future__ import annotations

import os
import posixpath
import time
from dataclasses import dataclass

import pandas as pd

from ..cluster_map import check_projection, cluster_map
from ..errors import InputValidationError, Problem
from ..insights import ImageSource, compute_insights, insight_files
from ..insights.build import ModelInsights
from ..insights.images import thumbnail_uri
from ..modalities.image import image_root_of, prepare_image_columns
from ..model import load_published_model
from ..model_description import check_model_id, run_blueprint
from ..run_folder import REPORT, Manifest, RunFolder, RunLock, insights_folder, model_report
from ..storage import content_hash, read_table
from .html import ReportImages, render_report


def report_path(manifest: Manifest, model_id: str) -> str:
    """Where a model's report lives in the run folder: ``report.html`` for the top model."""
    return REPORT if model_id == manifest.top_model else model_report(model_id)


@dataclass
class ModelReport:
    """A model's report and insights files (names in the run folder), not yet written."""

    model_id: str
    report: str
    insights: str
    files: dict[str, bytes | str]
    seconds: float


def build_report(folder: RunFolder, frame: pd.DataFrame, manifest: Manifest, model_id: str | None = None,
                 map_projection: str = "pca", **options) -> ModelReport:
    """Compute a model's insights and report from the run's verified files.

    Parameters
    ----------
    folder : RunFolder
        The run folder (models and ``features/`` already written).
    frame : DataFrame
        The run's input table.
    manifest : Manifest
        The run's manifest (committed or a draft listing the files written so far).
    model_id : str, optional
        Default: the run's top model.
    map_projection : {"pca", "tsne", "umap"}, default="pca"
        The 2-D projection of the Cluster map (UMAP needs umap-learn).
    **options
        Passed to :func:`clusterflow.insights.compute_insights` (``association_method``, ``projection``, ...).
    """
    started = time.perf_counter()
    model_id = model_id or manifest.top_model
    check_model_id(manifest, model_id)
    check_projection(map_projection)  # before the slow part
    model = load_published_model(folder, manifest, model_id)
    blueprint = run_blueprint(folder, manifest, model_id, model)  # before the insights use the model
    features = folder.features(manifest)
    X = features.full_matrix()
    source = ImageSource(storage_options=folder.storage_options)  # the frame holds resolved image URIs
    seed = manifest.parameters["seed"]
    insights = compute_insights(model, frame, X, features.partition.validation, model_id=model_id, source=source,
                                random_state=seed, **options)
    path = report_path(manifest, model_id)
    href = posixpath.relpath("insights", posixpath.dirname(path) or ".")
    html = render_report(manifest, folder.leaderboard(manifest), insights, report_images(insights, source), href,
                         blueprint=blueprint,
                         cluster_map=cluster_map(model, frame, X, projection=map_projection, random_state=seed))
    folder_name = insights_folder(model_id)
    files = {f"{folder_name}/{name}": data for name, data in insight_files(insights).items()}
    files[path] = html
    return ModelReport(model_id, path, folder_name, files, time.perf_counter() - started)


TOP_MODELS_REPORTED = 3


def add_report(folder: RunFolder, frame: pd.DataFrame, manifest: Manifest, top: int = TOP_MODELS_REPORTED,
               **options) -> Manifest:
    """Write the insights and reports of the ``top`` best models; return the draft manifest listing them.

    The top model's report is ``report.html``; the others' are under ``reports/``. The
    manifest is returned, not committed: the caller commits it last.
    """
    scored = folder.leaderboard(manifest)
    scored = scored[(scored["status"] == "ok") & scored["silhouette"].notna()]["model_id"].tolist()
    model_ids = [manifest.top_model] + [m for m in scored if m != manifest.top_model][: top - 1]
    reports = [build_report(folder, frame, manifest, model_id, **options) for model_id in model_ids]
    draft = folder.stage(manifest, {name: data for r in reports for name, data in r.files.items()})
    first = reports[0]
    timings = {**manifest.timings_seconds, "insights_and_report": sum(r.seconds for r in reports)}
    return draft.model_copy(update={"report": first.report, "insights": first.insights,
                                    "model_reports": {r.model_id: r.report for r in reports},
                                    "timings_seconds": timings})


def republish_report(folder: RunFolder, frame: pd.DataFrame, model_id: str | None, lock: RunLock,
                     **options) -> tuple[Manifest, ModelReport]:
    """Rebuild one model's insights and report on a published run and commit them as its next revision."""
    manifest = folder.manifest()
    built = build_report(folder, frame, manifest, model_id, **options)
    changes = {"model_reports": {**manifest.model_reports, built.model_id: built.report}}
    if built.model_id == manifest.top_model:
        changes.update(report=built.report, insights=built.insights)
    draft = folder.stage(manifest.next_revision(**changes), built.files)
    return folder.commit(draft, lock), built


def cluster_summary_markdown(folder: RunFolder, manifest: Manifest) -> str:
    """A few facts per cluster of the top model (size, defining features), from its published insights."""
    document = folder.read_json(f"{manifest.insights}/insights.json", manifest)
    lines = "".join(f"\n- {sentence}" for sentence in document["summary"])
    return (f"# Clusters of run `{manifest.run_id}`\n\nTop model **{document['model_id']}**, clusters by size:\n"
            f"{lines}\n\nThe full report: `{folder.url(manifest.report)}`\n")


def report_link(folder: RunFolder, manifest: Manifest) -> str:
    """A URL of the run's report (``file://`` for a local run folder)."""
    uri = folder.url(manifest.report)
    return uri if "://" in uri else "file://" + os.path.abspath(uri)


def read_run_input(manifest: Manifest, storage_options: dict | None = None) -> pd.DataFrame:
    """The run's input table, checked against the content hash in its manifest.

    Image paths become URIs under the run's image root, checked, as the run resolved them.
    """
    uri, expected = manifest.input.uri, manifest.input.sha256
    if manifest.sample is not None:  # a partitioned table: its sample, as the run's report described it
        from ..large_tables import read_run_sample

        frame = read_run_sample(manifest, storage_options)
    elif content_hash(uri, storage_options) != expected:
        raise InputValidationError([Problem(
            rule=f"the input table {uri} changed since the run (its SHA-256 differs from the manifest's)",
            hint="restore the original table; insights describe the rows the run clustered")])
    else:
        frame = read_table(uri, storage_options)
    parameters = manifest.parameters
    images = [column for column, role in manifest.role_of.items() if role == "image"]
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
