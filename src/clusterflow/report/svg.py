"""Hand-written inline SVG charts. Every label and tooltip goes through :func:`esc`."""
from __future__ import annotations

from html import escape

import numpy as np

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
