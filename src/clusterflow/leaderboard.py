"""The leaderboard: one row per candidate, ranked by the run's metric.

``auto`` (the default) ranks by ``silhouette_excess``: the silhouette on the validation
rows pooled with train rows (up to the silhouette sample), clusters under 2% of the rows
counted as noise, minus the silhouette k-means reaches with as many clusters on
structureless data of the same spread (``reference_silhouette``), among the models whose
clusters survive resampling (``stability`` at least 0.7) first, then the others. On the labelled benchmark (bench/quality.py) it
picked better than validation silhouette, which favours two clusters wherever the data
are elongated. ``silhouette`` ranks by validation silhouette alone.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .training import CandidateResult

COLUMNS = ["rank", "model_id", "algorithm", "k_requested", "clusters", "silhouette", "calinski_harabasz",
           "davies_bouldin", "noise_fraction", "fit_seconds", "score_seconds", "fit_rows", "cluster_sizes",
           "status", "error", "note", "modalities", "silhouette_pooled", "reference_silhouette", "silhouette_excess",
           "stability"]
RANKED_BY = {"auto": "silhouette_excess", "silhouette": "silhouette"}  # metric -> the column it ranks by
STABLE = 0.7  # metric auto: models at least this stable under resampling rank before the others


def build_leaderboard(results: list[CandidateResult], modalities: Sequence[str] = (),
                      metric: str = "auto") -> pd.DataFrame:
    """Rank candidates by ``metric`` (see :data:`RANKED_BY`), best first; undefined scores, then failures, last.

    ``modalities`` are the feature blocks the candidates were trained on, shown as
    e.g. "numeric+categorical+text".
    """
    rows = []
    for r in results:
        s = r.scores
        rows.append({
            "model_id": r.spec.model_id, "algorithm": r.spec.algorithm,
            "k_requested": r.spec.k if r.spec.k is not None else pd.NA,
            "clusters": len(r.clusterer.clusters_) if r.ok else pd.NA,
            "silhouette": s.get("silhouette", np.nan), "calinski_harabasz": s.get("calinski_harabasz", np.nan),
            "davies_bouldin": s.get("davies_bouldin", np.nan), "noise_fraction": s.get("noise_fraction", np.nan),
            "fit_seconds": r.fit_seconds, "score_seconds": r.score_seconds,
            "fit_rows": r.clusterer.fit_rows_ if r.ok else pd.NA,
            "cluster_sizes": json.dumps(s.get("cluster_sizes", {})),
            "status": "ok" if r.ok else "failed", "error": r.error or "", "note": s.get("note", ""),
            "modalities": "+".join(modalities),
            **{c: s.get(c, np.nan) for c in ("silhouette_pooled", "reference_silhouette", "silhouette_excess",
                                            "stability")},
        })
    return rank(pd.DataFrame(rows, columns=COLUMNS[1:]), metric)


def extend_leaderboard(board: pd.DataFrame, results: list[CandidateResult], metric: str = "auto") -> pd.DataFrame:
    """``board`` with rows for more candidates (a rerun's, on the same features), all ranked again."""
    added = build_leaderboard(results, modalities=str(board["modalities"].iloc[0]).split("+"),
                              metric=metric).drop(columns="rank")
    return rank(pd.concat([board.drop(columns="rank"), added], ignore_index=True), metric)


def rank(board: pd.DataFrame, metric: str = "auto") -> pd.DataFrame:
    """``board`` (without its rank column) in ``metric``'s order, numbered from 1."""
    # A lattice of one-hot levels, or clusters a resample moves, scores a high silhouette and no segment.
    unstable = ~(board["stability"] >= STABLE) if metric == "auto" else False
    board = board.assign(_failed=board["status"] != "ok", _unstable=unstable)
    board = board.sort_values(["_failed", "_unstable", RANKED_BY[metric], "silhouette", "model_id"],
                              ascending=[True, True, False, False, True], na_position="last", kind="stable")
    board = board.drop(columns=["_failed", "_unstable"])
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    return board.astype({"k_requested": "Int64", "clusters": "Int64", "fit_rows": "Int64"}).reset_index(drop=True)


def top_model_id(board: pd.DataFrame, metric: str = "auto") -> str:
    """The first ranked model with a defined score of ``metric``, else the first that trained."""
    ok = board[board["status"] == "ok"]
    scored = ok[ok[RANKED_BY[metric]].notna()]
    return str((scored if len(scored) else ok).iloc[0]["model_id"])


def format_leaderboard(board: pd.DataFrame, limit: int = 20) -> str:
    """A plain-text table of the leaderboard for the terminal."""
    shown = board[["rank", "model_id", "clusters", "silhouette_excess", "silhouette", "stability",
                   "calinski_harabasz", "davies_bouldin", "noise_fraction", "fit_seconds", "status"]].head(limit)
    return shown.to_string(index=False, float_format=lambda v: f"{v:.3f}")


def why_top_model(board: pd.DataFrame, metric: str = "auto") -> str:
    """One paragraph, with the numbers, on why the top model ranks first under ``metric``."""
    top = board[board["model_id"] == top_model_id(board, metric)].iloc[0]
    by_silhouette = board[board["status"] == "ok"].sort_values(["silhouette", "model_id"], ascending=[False, True],
                                                               na_position="last").iloc[0]
    if metric == "silhouette":
        return (f"{top['model_id']} ranks first by validation silhouette ({top['silhouette']:.3f}); its stability "
                f"under resampling is {top['stability']:.2f}.")
    stable = board[(board["status"] == "ok") & (board["stability"] >= STABLE)]
    among = (f"of the {len(stable)} models whose clusters survive resampling (stability >= {STABLE}; "
             f"its own {top['stability']:.2f})" if top["stability"] >= STABLE else
             f"no model reached stability {STABLE}, so among all (its stability {top['stability']:.2f})")
    why = (f"{top['model_id']} ranks first: {among}, its silhouette on the pooled rows ({top['silhouette_pooled']:.3f}) "
           f"rises the most, by {top['silhouette_excess']:.3f}, above what {int(top['clusters'])} clusters score "
           f"on structureless data of the same spread ({top['reference_silhouette']:.3f}).")
    if by_silhouette["model_id"] != top["model_id"]:
        why += (f" By validation silhouette alone {by_silhouette['model_id']} would rank first "
                f"({by_silhouette['silhouette']:.3f} vs {top['silhouette']:.3f}): silhouette favours few clusters "
                "on elongated data and lattices of one-hot levels, which the reference and the stability "
                "rule discount.")
    return why
