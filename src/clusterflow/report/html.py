"""The run report: one self-contained HTML file (inline CSS, JS, SVG and images; no network)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..cluster_map import ClusterMap
from ..insights import ModelInsights, describe_clusters
from ..insights.profiles import ALL
from ..modalities import modality_of_kind
from ..run_folder import Manifest
from . import svg
from .assets import SCRIPT, STYLE
from .svg import cluster_colour, esc

SECTIONS = {"summary": "Summary", "leaderboard": "Leaderboard", "blueprint": "Blueprint", "map": "Cluster map",
            "sizes": "Cluster sizes",
            "impact": "Feature Impact", "insights": "Cluster Insights", "associations": "Feature Associations",
            "embeddings": "Image Embeddings", "activation": "Activation Maps", "parameters": "Run parameters"}
LEADERBOARD_COLUMNS = ["rank", "model_id", "algorithm", "k_requested", "clusters", "algorithm_pick", "agreement",
                       "silhouette_excess", "stability", "bic", "silhouette", "calinski_harabasz", "davies_bouldin",
                       "noise_fraction", "fit_seconds", "status"]


@dataclass
class ReportImages:
    """Images embedded in the report as ``data:`` URIs, by input row (None: could not be read)."""

    thumbnails: dict[int, str | None] = field(default_factory=dict)
    large: dict[int, str | None] = field(default_factory=dict)


def render_report(manifest: Manifest, leaderboard: pd.DataFrame, insights: ModelInsights,
                  images: ReportImages | None = None, insights_href: str = "insights", *,
                  blueprint: dict | None = None, cluster_map: ClusterMap | None = None) -> str:
    """The report of one model of a run, as a complete HTML document.

    Parameters
    ----------
    manifest : Manifest
        The run's manifest (input, roles, parameters, versions, timings).
    leaderboard : DataFrame
        The run's leaderboard.
    insights : ModelInsights
        The insights of the model the report is about.
    images : ReportImages, optional
        Thumbnails and larger images of the rows the image views show.
    insights_href : str, default="insights"
        Relative link from the report to the ``insights/`` folder (for the downloads).
    blueprint : dict, optional
        The model's blueprint (:func:`clusterflow.model_description.describe_model`).
    cluster_map : ClusterMap, optional
        Sampled rows placed in 2-D (:func:`clusterflow.cluster_map.cluster_map`).

    Returns
    -------
    str
        The HTML document. Every string from the data or the run is escaped.
    """
    images = images or ReportImages()
    clusters = insights.clusters
    body = [
        _summary(insights, clusters, f"{insights_href}/{insights.model_id}"),
        _leaderboard(leaderboard, insights.model_id, (manifest.selection or {}).get("why", "")),
        _blueprint(blueprint),
        _map(cluster_map, clusters),
        _sizes(insights, clusters),
        _impact(insights),
        _cluster_insights(insights, clusters, images),
        _associations(insights),
        _embeddings(insights, clusters, images),
        _activation(insights, clusters, images),
        _parameters(manifest),
    ]
    title = f"Clusters of {manifest.input.uri.rsplit('/', 1)[-1]} — {insights.model_id}"
    nav = "".join(f'<a href="#{key}">{esc(name)}</a>' for key, name in SECTIONS.items())
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>run {esc(manifest.run_id)} · {manifest.input.rows:,} rows · "
        f"{len([c for c in clusters if c != -1])} clusters · created {esc(manifest.created_at)}</p></header>"
        f"<nav>{nav}</nav><main>{''.join(body)}</main><div id=\"tip\" hidden></div>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def _section(key: str, content: str, intro: str = "") -> str:
    intro = f'<p class="note">{intro}</p>' if intro else ""
    return f'<section id="{key}"><h2>{esc(SECTIONS[key])}</h2>{intro}{content}</section>'


def _cluster_name(cluster: int) -> str:
    return "noise" if cluster == -1 else f"cluster {cluster}"


def _swatch(cluster: int, clusters: list[int]) -> str:
    return f'<span class="swatch" style="background:{cluster_colour(cluster, clusters)}"></span>'


def _summary(insights: ModelInsights, clusters: list[int], download: str) -> str:
    items = "".join(f"<li>{_swatch(c, clusters)}{esc(s)}</li>"
                    for c, s in zip(clusters, describe_clusters(insights, max_clusters=len(clusters))))
    files = ["clusters.csv", "cluster_insights.csv", "feature_impact.csv", "modality_impact.csv", "insights.json"]
    if insights.associations is not None:
        files += ["associations.csv", "associated_pairs.csv"]
    links = " · ".join(f'<a href="{esc(download)}/{name}">{name}</a>' for name in files)
    return _section("summary", f"<ul>{items}</ul><p class=\"small\">Downloads: {links}</p>",
                    f"Model {esc(insights.model_id)}; clusters by size, each with the features that set it apart.")


def _leaderboard(board: pd.DataFrame, model_id: str, why: str) -> str:
    columns = [c for c in LEADERBOARD_COLUMNS if c in board.columns]
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    rows = []
    for record in board[columns].itertuples(index=False):
        values = dict(zip(columns, record))
        cells = "".join(f'<td class="num">{esc(_fmt(v))}</td>' if _is_number(v) else f"<td>{esc(_fmt(v))}</td>"
                        for v in values.values())
        current = ' class="current"' if values.get("model_id") == model_id else ""
        rows.append(f"<tr{current}>{cells}</tr>")
    table = (f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead>'
             f'<tbody>{"".join(rows)}</tbody></table></div>')
    why = f'<p><b>Why the top model.</b> {esc(why)}</p>' if why else ""
    return _section("leaderboard", why + table, "Ranked by the run's metric (see the README's Algorithms and "
                                                "scoring); click a header to sort. The highlighted row is the "
                                                "model of this report.")


def _blueprint(blueprint: dict | None) -> str:
    if blueprint is None:
        return _section("blueprint", '<p class="note">No blueprint was given for this model.</p>')
    return _section("blueprint", f'<div class="scroll">{svg.blueprint_diagram(blueprint)}</div>',
                    f"What model {esc(blueprint['model_id'])} is, left to right: each modality block's input "
                    "columns and fitted featurizer, the reducer, the clusterer and how it assigns new rows. "
                    "Read from the fitted objects; hover a box for every column and setting.")


def _map(cluster_map: ClusterMap | None, clusters: list[int]) -> str:
    if cluster_map is None:
        return _section("map", '<p class="note">No cluster map was given for this model.</p>')
    frame = cluster_map.points
    p_columns = [c for c in frame.columns if c.startswith("p_")]
    points = []
    for record in frame.to_dict("records"):
        proba = sorted(((record[c], int(c[2:])) for c in p_columns), reverse=True)[:3]
        lines = [f"row {record['row_id']}: {_cluster_name(int(record['cluster']))}",
                 *(f"p({_cluster_name(c)}) = {p:.3f}" for p, c in proba),
                 *(f"{column} = {value}" for column, value in record["values"])]
        points.append((record["x"], record["y"], cluster_colour(int(record["cluster"]), clusters), "\n".join(lines)))
    legend = " ".join(f"{_swatch(c, clusters)}{esc(_cluster_name(c))}" for c in clusters)
    sampled = (f"a seeded sample of {len(frame):,} of the {cluster_map.total_rows:,} rows"
               if len(frame) < cluster_map.total_rows else f"all {len(frame):,} rows")
    axes = {"pca": "the first two principal components" + (
                f" ({cluster_map.explained_variance:.0%} of the variance)"
                if cluster_map.explained_variance is not None else ""),
            "tsne": "t-SNE", "umap": "UMAP"}[cluster_map.projection]
    return _section("map", f"<p>{legend}</p>{svg.scatter_map(points)}",
                    f"{sampled.capitalize()}, placed by {axes} of the model's reduced features, each in its "
                    "cluster's colour (noise grey). Hover a dot for its row, probabilities and first input values; "
                    "wheel to zoom, drag to pan, double-click to reset.")


def _sizes(insights: ModelInsights, clusters: list[int]) -> str:
    items = [(_cluster_name(r.cluster), r.rows, cluster_colour(r.cluster, clusters),
              f"{_cluster_name(r.cluster)}: {r.rows:,} rows ({r.share:.1%})") for r in insights.sizes.itertuples()]
    return _section("sizes", svg.bar_chart(items, value_format="{:,.0f}"), "Rows per cluster, over all rows.")


def _impact(insights: ModelInsights) -> str:
    def items(table):
        return [(r.feature, r.impact, "#4269d0", f"{r.feature} ({r.modality}): impact {r.impact:.2f}; "
                 f"{r.changed_share:.1%} of rows change cluster; probability RMSE {r.proba_rmse:.3f}")
                for r in table.itertuples()]

    content = (f"<h3>Input columns</h3>{svg.bar_chart(items(insights.impact))}"
               f"<h3>Modalities</h3>{svg.bar_chart(items(insights.modality_impact))}")
    return _section("impact", content, "Shuffle one column (or a whole modality) over the validation rows, "
                                       "re-assign with the fitted model, and measure how much the assignment moves: "
                                       "share of rows changing cluster and RMSE of membership probabilities, "
                                       "scaled so the strongest is 1. Hover a bar for the numbers.")


def _cluster_insights(insights: ModelInsights, clusters: list[int], images: ReportImages) -> str:
    head = "<th class=\"feature\">feature</th><th>all data</th>" + "".join(
        f"<th>{_swatch(c, clusters)}{esc(_cluster_name(c))}<br><span class=\"small\">{n:,} rows</span></th>"
        for c, n in zip(insights.sizes["cluster"], insights.sizes["rows"]))
    rows, maps = [], []
    for feature, profile in insights.profiles.items():
        cells = [_profile_cell(profile, key, clusters, images) for key in [ALL] + [str(c) for c in clusters]]
        rows.append(f'<tr><td class="feature"><b>{esc(feature)}</b><br><span class="small">{esc(profile["role"])}'
                    f'</span></td>{"".join(f"<td>{c}</td>" for c in cells)}</tr>')
        if profile["kind"] == "geo":
            centres = [(c, s["centre"]["lat"], s["centre"]["lon"], f"{_cluster_name(c)} centre")
                       for c in clusters if (s := profile["stats"][str(c)])["centre"]]
            maps.append(f"<h3>{esc(feature)}: members by cluster</h3>"
                        f"{svg.geo_map(profile['points'], centres, clusters)}")
    table = (f'<div class="scroll"><table class="insights"><thead><tr>{head}</tr></thead>'
             f'<tbody>{"".join(rows)}</tbody></table></div>')
    return _section("insights", table + "".join(maps),
                    "Features in order of Feature Impact; clusters by size. Numeric: box of the quartiles with the "
                    "median, whiskers to the range (one scale per row). Maps zoom with the wheel, pan by dragging, "
                    "reset on double-click.")


def _profile_cell(profile: dict, key: str, clusters: list[int], images: ReportImages) -> str:
    stats = profile["stats"].get(key)
    if stats is None:
        return ""
    missing = f'<div class="small">missing {_pct(stats["missing"])}</div>'
    kind = profile["kind"]
    modality = modality_of_kind(kind)
    if modality is not None and modality.report_cell is not None:  # a modality that draws its own cells
        return modality.report_cell(profile, key, clusters, images)
    if kind == "numeric":
        overall = profile["stats"][ALL]
        colour = "#9498a0" if key == ALL else cluster_colour(int(key), clusters)
        plot = "" if overall["min"] is None else svg.box_plot(stats, overall["min"], overall["max"], colour)
        return (f'{plot}<div>mean {_fmt(stats["mean"])} · median {_fmt(stats["median"])}</div>'
                f'<div class="small">quartiles {_fmt(stats["q1"])} – {_fmt(stats["q3"])}</div>{missing}')
    if kind == "categorical":
        shares = [(lv, stats["levels"][lv]) for lv in profile["levels"]]
        shares += [("(all other)", stats["other"]), ("(missing)", stats["missing"])]
        top = sorted(shares[:-2], key=lambda s: -(s[1] or 0))[:3]
        listed = "".join(f"<div>{esc(lv)} {_pct(v)}</div>" for lv, v in top)
        return f'{svg.stacked_bar(shares)}{listed}<div class="small">all other {_pct(stats["other"])}</div>{missing}'
    if kind == "text":
        if key == ALL:
            return missing
        terms = "".join(f'<span data-tip="c-TF-IDF {t["score"]:.4f}">{esc(t["term"])}</span>' for t in stats["terms"])
        examples = "".join(f'<div class="example">{esc(e["text"])}</div>' for e in stats["examples"])
        return f'<div class="terms">{terms}</div><details><summary>examples</summary>{examples}</details>{missing}'
    if kind == "image":
        if key == ALL:
            return missing
        thumbs = "".join(_thumb(images.thumbnails.get(e["row"]), e["path"]) for e in stats["examples"])
        return f'<div class="thumbs">{thumbs}</div>{missing}'
    if kind == "geo":
        centre = stats["centre"]
        where = f'<div>centre {centre["lat"]:.3f}, {centre["lon"]:.3f}</div>' if centre else ""
        examples = "".join(f'<div class="small">{e["lat"]:.4f}, {e["lon"]:.4f}</div>'
                           for e in stats.get("examples", []))
        return f"{where}{examples}{missing}"
    if "median" not in stats:  # datetime with no parseable value
        return missing
    return (f'<div>median {esc(stats["median"][:19])}</div><div class="small">quartiles {esc(stats["q1"][:10])} – '
            f'{esc(stats["q3"][:10])}</div><div class="small">mostly {esc(stats["weekday"])} '
            f'({_pct(stats["weekday_share"])})</div>{missing}')


def _thumb(uri: str | None, path: str) -> str:
    if uri is None:
        return f'<span class="small" data-tip="{esc(path)}">(unreadable)</span>'
    return f'<img src="{esc(uri)}" alt="{esc(path)}" data-tip="{esc(path)}">'


def _associations(insights: ModelInsights) -> str:
    result = insights.associations
    if result is None:
        return _section("associations", '<p class="note">Fewer than two numeric or categorical features.</p>')
    name = {"mutual_info": "normalised mutual information", "cramers_v": "Cramér's V"}[result.method]
    pairs = "".join(f"<tr><td>{esc(r.feature_a)}</td><td>{esc(r.feature_b)}</td><td class=\"num\">{r.association:.2f}"
                    f"</td></tr>" for r in result.strong_pairs.itertuples())
    listing = (f"<h3>Strongly associated pairs (candidates to drop)</h3><table><thead><tr><th>feature</th>"
               f"<th>feature</th><th>{esc(name)}</th></tr></thead><tbody>{pairs}</tbody></table>" if pairs
               else '<p class="note">No strongly associated pairs.</p>')
    matrix = svg.heatmap(list(result.matrix.columns), result.matrix.to_numpy(), name)
    return _section("associations", matrix + listing,
                    f"Pairwise {esc(name)} of numeric and categorical features (top 50 by Feature Impact), "
                    "ordered so related features sit together. Hover for values; wheel to zoom.")


def _embeddings(insights: ModelInsights, clusters: list[int], images: ReportImages) -> str:
    frame = insights.embedding
    if frame is None:
        return _section("embeddings", '<p class="note">No image column in this run.</p>')
    p_columns = [c for c in frame.columns if c.startswith("p_")]
    points = []
    for record in frame.to_dict("records"):
        proba = "\n".join(f"{_cluster_name(int(c[2:]))}: {record[c]:.3f}" for c in p_columns)
        points.append((record["x"], record["y"], images.thumbnails.get(record["row"]),
                       cluster_colour(int(record["cluster"]), clusters),
                       f"{record['path']}\nassigned: {_cluster_name(int(record['cluster']))}\n{proba}"))
    legend = " ".join(f"{_swatch(c, clusters)}{esc(_cluster_name(c))}" for c in clusters)
    return _section("embeddings", f"<p>{legend}</p>{svg.embedding_plot(points)}",
                    f"{len(frame)} validation images placed by a 2-D projection of their image features, each framed "
                    "in its cluster's colour. Hover for the probability of each cluster; wheel to zoom, drag to pan.")


def _activation(insights: ModelInsights, clusters: list[int], images: ReportImages) -> str:
    if not insights.activation_maps:
        return _section("activation", '<p class="note">No image column in this run.</p>')
    figures = []
    for m in insights.activation_maps:
        uri = images.large.get(m.row)
        picture = svg.occlusion_overlay(uri, np.asarray(m.drop)) if uri else _thumb(None, m.path)
        figures.append(f"<figure>{picture}<figcaption>{_swatch(m.cluster, clusters)}{esc(_cluster_name(m.cluster))} "
                       f"(p={m.probability:.2f}, largest drop {float(np.max(m.drop)):+.3f}) · {esc(m.path)}"
                       "</figcaption></figure>")
    return _section("activation", f'<div class="grid">{"".join(figures)}</div>',
                    "Occlusion maps of each largest cluster's most representative image: each patch in turn is "
                    "masked with the image's mean colour and the row is re-assigned through the full model; red "
                    "marks where the probability of its cluster drops most.")


def _parameters(manifest: Manifest) -> str:
    facts = {
        "run id": manifest.run_id, "input": manifest.input.uri,
        "input sha256": manifest.input.sha256,
        "rows × columns": f"{manifest.input.rows:,} × {manifest.input.columns}",
        "top model": manifest.top_model,
        "train / validation rows": f"{manifest.partition.train_rows:,} / "
                                   f"{manifest.partition.validation_rows:,}",
        "k values": ", ".join(map(str, manifest.k_values)), "algorithms": ", ".join(manifest.algorithms),
        "parameters": json.dumps(manifest.parameters, sort_keys=True),
        "features": manifest.features.model_dump_json(exclude={"blocks"}),
        "timings (s)": ", ".join(f"{k} {v:.1f}" for k, v in manifest.timings_seconds.items()),
        "versions": ", ".join(f"{k} {v}" for k, v in manifest.versions.items() if v),
    }
    facts_html = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts.items())
    roles = "".join(f"<tr><td>{esc(r['column'])}</td><td>{esc(r['role'])}</td><td>{esc(r['reason'])}</td></tr>"
                    for r in manifest.roles)
    return _section("parameters", f"<dl>{facts_html}</dl><h3>Column roles</h3><table><thead><tr><th>column</th>"
                                  f"<th>role</th><th>why</th></tr></thead><tbody>{roles}</tbody></table>")


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, (float, np.floating)):
        return f"{value:,.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _pct(value) -> str:
    return "–" if value is None else f"{value:.1%}"
