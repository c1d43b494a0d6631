"""Hand-written inline SVG charts. Every label and tooltip goes through :func:`esc`."""
from __future__ import annotations

from html import escape

import numpy as np

from ..model_description import structure_note

PALETTE = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e",
           "#9498a0")
NOISE_COLOUR = "#b8b8b8"


def esc(value) -> str:
    """Text escaped for HTML content and attribute values."""
    return escape(str(value), quote=True)


def cluster_colour(cluster: int, clusters: list[int]) -> str:
    """A stable colour per cluster (by its position among ``clusters``); noise is grey."""
    if cluster == -1:
        return NOISE_COLOUR
    return PALETTE[[c for c in clusters if c != -1].index(cluster) % len(PALETTE)]


def bar_chart(items: list[tuple[str, float, str, str]], width: int = 640, bar_height: int = 20,
              label_width: int = 200, value_format: str = "{:.2f}") -> str:
    """Horizontal bars: ``(label, value, colour, tooltip)``; values scaled to the largest."""
    top = max((v for _, v, _, _ in items), default=0) or 1.0
    span = width - label_width - 70
    rows = []
    for i, (label, value, colour, tip) in enumerate(items):
        y = i * (bar_height + 6)
        length = max(span * value / top, 1.0)
        rows.append(
            f'<g data-tip="{esc(tip)}"><text x="{label_width - 8}" y="{y + bar_height * 0.72:.1f}" '
            f'text-anchor="end" class="lbl">{esc(_clip(label, 30))}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" fill="{colour}" rx="2"/>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + bar_height * 0.72:.1f}" class="val">'
            f'{esc(value_format.format(value))}</text></g>')
    height = max(len(items) * (bar_height + 6), bar_height)
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">'
            f'{"".join(rows)}</svg>')


def box_plot(stats: dict, low: float, high: float, colour: str, width: int = 120, height: int = 18) -> str:
    """A small box plot of quartiles (box), median (line) and range (whiskers) on a shared scale."""
    if stats.get("median") is None:
        return ""
    span = (high - low) or 1.0

    def x(v):
        return 2 + (width - 4) * (v - low) / span

    mid = height / 2
    return (f'<svg class="box" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
            f'<line x1="{x(stats["min"]):.1f}" x2="{x(stats["max"]):.1f}" y1="{mid}" y2="{mid}" stroke="#888"/>'
            f'<rect x="{x(stats["q1"]):.1f}" y="3" width="{max(x(stats["q3"]) - x(stats["q1"]), 1):.1f}" '
            f'height="{height - 6}" fill="{colour}" fill-opacity="0.55" stroke="{colour}"/>'
            f'<line x1="{x(stats["median"]):.1f}" x2="{x(stats["median"]):.1f}" y1="2" y2="{height - 2}" '
            f'stroke="#222" stroke-width="2"/></svg>')


def stacked_bar(shares: list[tuple[str, float]], width: int = 120, height: int = 14) -> str:
    """Shares of levels as one stacked bar, each segment with its level and share as tooltip."""
    x, parts = 0.0, []
    for i, (level, share) in enumerate(shares):
        w = width * (share or 0.0)
        colour = NOISE_COLOUR if level in ("(all other)", "(missing)") else PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{colour}" '
                     f'data-tip="{esc(level)}: {share:.1%}"/>')
        x += w
    return f'<svg class="stack" viewBox="0 0 {width} {height}" width="{width}" height="{height}">{"".join(parts)}</svg>'


def heatmap(labels: list[str], matrix: np.ndarray, method: str) -> str:
    """A symmetric association matrix as coloured cells (darker = stronger), hover for the value."""
    n = len(labels)
    cell = int(min(36, max(12, 560 / max(n, 1))))
    margin = 8 + 7 * min(max((len(s) for s in labels), default=0), 28)
    size = margin + n * cell
    parts = []
    for i, label in enumerate(labels):
        parts.append(f'<text x="{margin - 4}" y="{margin + i * cell + cell * 0.75:.1f}" text-anchor="end" '
                     f'class="lbl">{esc(_clip(label, 28))}</text>')
        parts.append(f'<text transform="translate({margin + i * cell + cell * 0.75:.1f},{margin - 4}) rotate(-90)" '
                     f'class="lbl">{esc(_clip(label, 28))}</text>')
        for j in range(n):
            value = float(matrix[i, j])
            parts.append(f'<rect x="{margin + j * cell}" y="{margin + i * cell}" width="{cell - 1}" '
                         f'height="{cell - 1}" '
                         f'fill="rgb({_shade(value)})" data-tip="{esc(labels[i])} ~ {esc(labels[j])}: '
                         f'{esc(method)} {value:.2f}"/>')
    return (f'<svg class="chart zoom" viewBox="0 0 {size} {size}" width="{min(size, 900)}" '
            f'height="{min(size, 900)}">{"".join(parts)}</svg>')


def geo_map(points: list[list], centres: list[tuple[int, float, float, str]], clusters: list[int],
            width: int = 720, height: int = 420) -> str:
    """Members as dots on lon/lat axes (equirectangular, no tiles), cluster centres as rings; zoom and pan."""
    lon = np.array([p[0] for p in points] + [c[2] for c in centres], dtype=float)
    lat = np.array([p[1] for p in points] + [c[1] for c in centres], dtype=float)
    if not len(lon):
        return '<p class="note">No locations to map.</p>'
    pad_lon, pad_lat = max(np.ptp(lon) * 0.05, 0.01), max(np.ptp(lat) * 0.05, 0.01)
    x0, x1, y0, y1 = lon.min() - pad_lon, lon.max() + pad_lon, lat.min() - pad_lat, lat.max() + pad_lat

    def xy(lo, la):
        return (lo - x0) / (x1 - x0) * width, (y1 - la) / (y1 - y0) * height

    parts = [f'<rect width="{width}" height="{height}" fill="#f4f6f8"/>']
    for lo, la, cluster in points:
        x, y = xy(lo, la)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{cluster_colour(cluster, clusters)}" '
                     f'fill-opacity="0.7" data-tip="cluster {cluster}: {la:.4f}, {lo:.4f}"/>')
    for cluster, la, lo, tip in centres:
        x, y = xy(lo, la)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="none" stroke-width="3" '
                     f'stroke="{cluster_colour(cluster, clusters)}" data-tip="{esc(tip)}"/>')
    axes = (f'<text x="4" y="{height - 4}" class="lbl">lon {x0:.2f} .. {x1:.2f}, lat {y0:.2f} .. {y1:.2f}</text>')
    return (f'<svg class="chart zoom map" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
            f'{"".join(parts)}{axes}</svg>')


def embedding_plot(points: list[tuple[float, float, str | None, str, str]], width: int = 900, height: int = 620,
                   thumb: int = 40) -> str:
    """Thumbnails at 2-D positions, framed in their cluster's colour: ``(x, y, image_uri, colour, tooltip)``."""
    parts = [f'<rect width="{width}" height="{height}" fill="#fafafa"/>']
    for x, y, uri, colour, tip in points:
        px, py = thumb / 2 + x * (width - 2 * thumb), thumb / 2 + (1 - y) * (height - 2 * thumb)
        image = (f'<image href="{esc(uri)}" x="{px:.1f}" y="{py:.1f}" width="{thumb}" height="{thumb}" '
                 f'preserveAspectRatio="xMidYMid slice"/>') if uri else ""
        parts.append(f'<g data-tip="{esc(tip)}">{image}<rect x="{px:.1f}" y="{py:.1f}" width="{thumb}" '
                     f'height="{thumb}" fill="{"none" if uri else colour}" stroke="{colour}" stroke-width="3"/></g>')
    return (f'<svg class="chart zoom" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
            f'{"".join(parts)}</svg>')


def occlusion_overlay(image_uri: str, drop: np.ndarray, size: int = 220) -> str:
    """The image under a red grid whose opacity is each patch's probability drop (hover for numbers)."""
    n_rows, n_cols = drop.shape
    top = max(float(drop.max()), 1e-12)
    cells = []
    for i in range(n_rows):
        for j in range(n_cols):
            value = float(drop[i, j])
            cells.append(f'<rect x="{j / n_cols * size:.1f}" y="{i / n_rows * size:.1f}" width="{size / n_cols:.1f}" '
                         f'height="{size / n_rows:.1f}" fill="#e0001b" fill-opacity="{0.7 * max(value, 0) / top:.2f}" '
                         f'data-tip="patch ({i}, {j}): probability drop {value:+.3f}"/>')
    return (f'<svg class="occlusion" viewBox="0 0 {size} {size}" width="{size}" height="{size}">'
            f'<image href="{esc(image_uri)}" width="{size}" height="{size}" preserveAspectRatio="none"/>'
            f'{"".join(cells)}</svg>')


def _shade(value: float) -> str:
    v = min(max(value, 0.0), 1.0)
    return f"{int(247 - 181 * v)},{int(251 - 146 * v)},{int(255 - 47 * v)}"


def _clip(text: str, n: int) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def scatter_map(points: list[tuple[float, float, str, str]], width: int = 900, height: int = 600) -> str:
    """One dot per point at 2-D positions in [0, 1]: ``(x, y, colour, tooltip)``; zoom and pan."""
    pad = 8
    parts = [f'<rect width="{width}" height="{height}" fill="#fafafa"/>']
    for x, y, colour, tip in points:
        parts.append(f'<circle cx="{pad + x * (width - 2 * pad):.1f}" cy="{pad + (1 - y) * (height - 2 * pad):.1f}" '
                     f'r="3" fill="{colour}" fill-opacity="0.75" data-tip="{esc(tip)}"/>')
    return (f'<svg class="chart zoom scatter" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
            f'{"".join(parts)}</svg>')


# The blueprint diagram: input columns -> featurizer per block -> reducer -> clusterer -> assignment.
NODE_LINE, NODE_PAD, NODE_GAP = 15, 8, 14
STAGES = {"inputs": (0, 210), "featurizer": (250, 300), "reducer": (600, 200), "clusterer": (840, 230),
          "assignment": (1110, 200)}  # x and width of each stage's nodes
DIAGRAM_WIDTH = 1310
LISTED_COLUMNS = 5


def blueprint_diagram(blueprint: dict) -> str:
    """The blueprint as a left-to-right diagram; hover a node for all its details."""
    parts, block_ends, y = [], [], 0
    for block in blueprint["blocks"]:
        inputs = _input_lines(block["columns"])
        featurizer = [*_wrap(block["summary"], STAGES["featurizer"][1], 3),
                      f"→ {block['width']:,} features · weight {block['weight']:.3g}",
                      f"{block['variance_share']:.0%} of the variance"]
        height = _node_height(max(len(inputs), len(featurizer)))
        details = "\n".join(f"{c}: {block['column_details'].get(c, '')}".rstrip(": ") for c in block["columns"])
        settings = "\n".join(f"{k} = {v}" for k, v in block["settings"].items())
        parts.append(_node("inputs", y, height, f"{block['modality']} columns", inputs,
                           f"{block['modality']} inputs ({len(block['columns'])}):\n{details}"))
        parts.append(_node("featurizer", y, height, f"{block['modality']} featurizer", featurizer,
                           f"{block['featurizer']}\n{block['summary']}\nwidth {block['width']:,}, weight {block['weight']:.3g} per "
                           f"column, total variance {block['total_variance']:.3g} ({block['variance_share']:.1%}{structure_note(block)})"
                           f"\n{settings}"))
        parts.append(_edge("inputs", "featurizer", y + height / 2, y + height / 2))
        block_ends.append(y + height / 2)
        y += height + NODE_GAP
    if blueprint["dropped"]:
        names = _input_lines([d["column"] for d in blueprint["dropped"]])
        height = _node_height(len(names))
        parts.append(_node("inputs", y, height, "not featurized", names,
                           "\n".join(f"{d['column']} ({d['role']}): {d['why']}" for d in blueprint["dropped"]),
                           dashed=True))
        y += height + NODE_GAP
    total = max(y - NODE_GAP, _node_height(5))
    reducer, clusterer = blueprint["reducer"], blueprint["clusterer"]
    stages = [("reducer", _reducer_node(reducer, blueprint["featurized_width"])), ("clusterer", _clusterer_node(clusterer)),
              ("assignment", _assignment_node(clusterer["assignment"]))]
    middle = (block_ends[0] + block_ends[-1]) / 2 if block_ends else total / 2
    for stage, (title, lines, tip) in stages:
        height = _node_height(len(lines))
        top = min(max(middle - height / 2, 0), max(total - height, 0))
        parts.append(_node(stage, top, height, title, lines, tip))
        total = max(total, top + height)
    parts += [_edge("featurizer", "reducer", end, middle) for end in block_ends]
    parts += [_edge("reducer", "clusterer", middle, middle), _edge("clusterer", "assignment", middle, middle)]
    height = int(total) + 2
    return (f'<svg class="chart blueprint" viewBox="0 0 {DIAGRAM_WIDTH} {height}" width="{DIAGRAM_WIDTH}" '
            f'height="{height}" role="img">{"".join(parts)}</svg>')


def _reducer_node(reducer: dict, featurized_width: int) -> tuple[str, list[str], str]:
    if reducer["method"] == "none":
        return "no reducer", [f"{featurized_width:,} features", *_wrap(reducer["note"], STAGES["reducer"][1], 3)], \
            reducer["note"]
    variance = reducer["explained_variance"]
    lines = [f"{reducer['input_width']:,} → {reducer['components']} components",
             *([f"{variance:.1%} of the variance"] if variance is not None else [])]
    settings = "\n".join(f"{k} = {v}" for k, v in reducer["settings"].items())
    return f"reducer: {reducer['method']}", lines, f"{reducer['method']}: {'; '.join(lines)}\n{settings}"


def _clusterer_node(c: dict) -> tuple[str, list[str], str]:
    count = f"k = {c['k']}, " if c["k"] is not None else ""
    lines = [f"{c['estimator']}", f"{count}{c['clusters']} clusters found",
             *([f"{c['noise_fraction']:.1%} noise in the fit"] if c["noise_fraction"] else []),
             *_wrap(c["sample_note"], STAGES["clusterer"][1], 2)]
    settings = "\n".join(f"{k} = {v}" for k, v in c["settings"].items())
    projection = f"\n{c['projection']}" if c.get("projection") else ""
    return f"clusterer: {c['algorithm']}", lines, f"{c['description']}{projection}\n{c['sample_note']}\n{settings}"


def _assignment_node(a: dict) -> tuple[str, list[str], str]:
    settings = "\n".join(f"{k} = {v}" for k, v in a["settings"].items())
    return (f"new rows: {a['path']}", _wrap(a["method"], STAGES["assignment"][1], 3),
            f"{a['method']}\nprobabilities: {a['probabilities']}\n{settings}")


def _input_lines(columns: list[str]) -> list[str]:
    listed = [str(c) for c in columns[:LISTED_COLUMNS]]
    if len(columns) > LISTED_COLUMNS:
        listed[-1] = f"+ {len(columns) - LISTED_COLUMNS + 1} more"
    return listed


def _node(stage: str, y: float, height: float, title: str, lines: list[str], tip: str, dashed: bool = False) -> str:
    x, width = STAGES[stage]
    chars = _chars(width)
    texts = "".join(f'<text x="{x + NODE_PAD}" y="{y + NODE_PAD + (i + 2) * NODE_LINE - 3:.1f}" class="val">'
                    f'{esc(_clip(line, chars))}</text>' for i, line in enumerate(lines))
    border = ' stroke-dasharray="4 3"' if dashed else ""
    return (f'<g class="node" data-tip="{esc(tip.strip())}"><rect x="{x}" y="{y:.1f}" width="{width}" '
            f'height="{height:.1f}" rx="6" fill="{"#fff" if dashed else "#f6f8fa"}" stroke="#8c959f"{border}/>'
            f'<text x="{x + NODE_PAD}" y="{y + NODE_PAD + NODE_LINE - 3:.1f}" class="lbl" font-weight="600">'
            f'{esc(_clip(title, chars))}</text>{texts}</g>')


def _edge(source: str, target: str, y0: float, y1: float) -> str:
    x0 = STAGES[source][0] + STAGES[source][1]
    x1 = STAGES[target][0]
    bend = (x1 - x0) / 2
    return (f'<path d="M{x0},{y0:.1f} C{x0 + bend},{y0:.1f} {x1 - bend},{y1:.1f} {x1 - 6},{y1:.1f}" fill="none" '
            f'stroke="#8c959f" stroke-width="1.5"/><path d="M{x1 - 7},{y1 - 4:.1f} L{x1},{y1:.1f} L{x1 - 7},'
            f'{y1 + 4:.1f} z" fill="#8c959f"/>')


def _node_height(n_lines: int) -> float:
    return 2 * NODE_PAD + (n_lines + 1) * NODE_LINE


def _chars(width: int) -> int:
    return int((width - 2 * NODE_PAD) / 6.2)  # characters of 11-12 px text that fit the node


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    """Words in lines that fit a node of ``width``; the last line clipped when more would be needed."""
    chars, lines = _chars(width), [""]
    for word in str(text).split():
        if lines[-1] and len(lines[-1]) + 1 + len(word) > chars:
            lines.append("")
        lines[-1] = f"{lines[-1]} {word}".strip()
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _clip(lines[-1] + " …", chars)
    return lines
