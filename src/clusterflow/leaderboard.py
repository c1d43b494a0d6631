"""The leaderboard: one row per candidate, ranked by the run's metric.

``auto`` (the default) ranks in two steps:

1. Each algorithm picks its own cluster count. A mixture (gmm, gmm_diag) takes the lowest
   ``bic`` on the scoring rows: its clusters may be elongated, which silhouette-based scores
   hold against it. Every other algorithm takes the highest ``silhouette_excess`` (the
   silhouette on the validation rows pooled with train rows, clusters under 2% of the rows
   counted as noise, minus the silhouette k-means reaches with as many clusters on
   structureless data of the same spread, ``reference_silhouette``) among its models whose
   clusters survive resampling (``stability`` at least 0.7), else among all of them.
2. Of these picks, the one whose labels agree most with every other model's (``agreement``:
   mean adjusted Rand index on the scoring rows) ranks first: a grouping that models with
   different assumptions also find is the one the data support. The other picks follow by
   agreement, then every other model in step 1's order (stable first, by silhouette excess).

On the labelled benchmark (bench/quality.py) this picked better than validation silhouette,
which favours two clusters wherever the data are elongated, and better than the silhouette
excess alone. ``silhouette`` ranks by validation silhouette alone.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .run_folder import SCORING_ROW
from .scoring import mean_agreement
from .training import CandidateResult

COLUMNS = ["rank", "model_id", "algorithm", "k_requested", "clusters", "silhouette", "calinski_harabasz",
           "davies_bouldin", "noise_fraction", "fit_seconds", "score_seconds", "fit_rows", "cluster_sizes",
           "status", "error", "note", "modalities", "silhouette_pooled", "reference_silhouette", "silhouette_excess",
           "stability", "bic", "agreement", "algorithm_pick"]
RANKED_BY = {"auto": "agreement", "silhouette": "silhouette"}  # metric -> the column that orders the top models
SCORED_BY = {"auto": "silhouette_excess", "silhouette": "silhouette"}  # metric -> the score a top model must have
STABLE = 0.7  # metric auto: an algorithm picks among its models at least this stable under resampling
PICKED_BY_BIC, PICKED_BY_EXCESS = "lowest BIC", "highest silhouette excess"


def build_leaderboard(results: list[CandidateResult], modalities: Sequence[str] = (),
                      metric: str = "auto") -> pd.DataFrame:
    """Rank candidates by ``metric`` (see the module's docstring), best first; undefined scores, then failures, last.

    ``modalities`` are the feature blocks the candidates were trained on, shown as
    e.g. "numeric+categorical+text".
    """
    return rank(_unranked(results, modalities, mean_agreement(scoring_labels(results))), metric)


def _unranked(results: list[CandidateResult], modalities: Sequence[str], agreements: dict[str, float]) -> pd.DataFrame:
    """One leaderboard row per candidate (no rank column), in the results' order."""
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
                                            "stability", "bic")},
            "agreement": agreements.get(r.spec.model_id, np.nan),
        })
    return pd.DataFrame(rows, columns=COLUMNS[1:])


def scoring_labels(results: list[CandidateResult]) -> pd.DataFrame:
    """Each trained candidate's labels of the scoring rows, a column per model, indexed by the rows' keys.

    Every candidate of a run is scored on the same rows; a row some candidate was not scored on
    is left out.
    """
    columns = [pd.Series(r.scoring_labels, index=pd.Index(r.scoring_keys, name=SCORING_ROW), name=r.spec.model_id)
               for r in results if r.ok and r.scoring_labels is not None]
    if not columns:
        return pd.DataFrame(index=pd.Index([], dtype=np.int64, name=SCORING_ROW))
    return pd.concat(columns, axis=1, join="inner")


def merged_scoring_labels(earlier: pd.DataFrame | None, results: list[CandidateResult]) -> pd.DataFrame | None:
    """A run's models' labels of the scoring rows joined with more candidates', on the rows both have.

    A cluster with another memory budget draws other train rows to score on; the validation
    rows are always shared. Earlier labels without keys (published before the keys were kept)
    are taken as of the same rows when there are as many. None when the earlier labels are
    unknown or no row is shared.
    """
    if earlier is None:
        return None
    added = scoring_labels(results)
    if added.columns.empty:
        return earlier
    if earlier.index.name != SCORING_ROW:
        if len(earlier) != len(added):
            return None
        earlier = earlier.set_axis(added.index)
    merged = earlier.drop(columns=added.columns, errors="ignore").join(added, how="inner")
    return merged if len(merged) else None


def extend_leaderboard(board: pd.DataFrame, results: list[CandidateResult], metric: str = "auto",
                       labels: pd.DataFrame | None = None) -> pd.DataFrame:
    """``board`` with rows for more candidates (a rerun's, on the same features), all ranked again.

    ``labels`` are every model's labels of the scoring rows (:func:`merged_scoring_labels`):
    every agreement is measured again. Without them no model has an agreement, and ``auto``
    puts the algorithms' picks first in step 1's order.
    """
    agreements = mean_agreement(labels) if labels is not None else {}
    added = _unranked(results, str(board["modalities"].iloc[0]).split("+"), agreements)
    extended = pd.concat([board.drop(columns="rank"), added], ignore_index=True).reindex(columns=COLUMNS[1:])
    extended["agreement"] = extended["model_id"].map(agreements).astype(float)
    return rank(extended, metric)


def rank(board: pd.DataFrame, metric: str = "auto") -> pd.DataFrame:
    """``board`` (without its rank column) in ``metric``'s order, numbered from 1."""
    # A lattice of one-hot levels, or clusters a resample moves, scores a high silhouette and no segment.
    unstable = ~(board["stability"] >= STABLE) if metric == "auto" else False
    board = board.assign(_failed=board["status"] != "ok", _unstable=unstable)
    board = board.sort_values(["_failed", "_unstable", SCORED_BY[metric], "silhouette", "model_id"],
                              ascending=[True, True, False, False, True], na_position="last", kind="stable")
    board = board.drop(columns=["_failed", "_unstable"]).assign(algorithm_pick="")
    if metric == "auto":
        board = _algorithm_picks_first(board)
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    return board.astype({"k_requested": "Int64", "clusters": "Int64", "fit_rows": "Int64"}).reset_index(drop=True)


def _algorithm_picks_first(board: pd.DataFrame) -> pd.DataFrame:
    """``board`` (in step 1's order) with each algorithm's pick marked and moved first, by agreement
    (in step 1's order where no agreement was measured)."""
    candidates = board[(board["status"] == "ok") & board["silhouette_excess"].notna()]
    picks = {}
    for _, models in candidates.groupby("algorithm", sort=False):
        by_bic = models["bic"].notna().any()
        picks[models["bic"].idxmin() if by_bic else models.index[0]] = PICKED_BY_BIC if by_bic else PICKED_BY_EXCESS
    board.loc[list(picks), "algorithm_pick"] = pd.Series(picks)
    first = [index for index in board.index if index in picks]  # no agreement measured: in step 1's order
    if picks and board.loc[first, "agreement"].notna().all():
        first = sorted(first, key=lambda index: -board.at[index, "agreement"])
    return board.loc[first + [index for index in board.index if index not in picks]]


def top_model_id(board: pd.DataFrame, metric: str = "auto") -> str:
    """The first ranked model with a defined score (silhouette excess, or validation silhouette for
    ``metric="silhouette"``), else the first that trained."""
    ok = board[board["status"] == "ok"]
    scored = ok[ok[SCORED_BY[metric]].notna()]
    return str((scored if len(scored) else ok).iloc[0]["model_id"])


def format_leaderboard(board: pd.DataFrame, limit: int = 20) -> str:
    """A plain-text table of the leaderboard for the terminal."""
    shown = board[["rank", "model_id", "clusters", "agreement", "silhouette_excess", "silhouette", "stability",
                   "bic", "calinski_harabasz", "davies_bouldin", "noise_fraction", "fit_seconds", "status"]].head(limit)
    return shown.to_string(index=False, float_format=lambda v: f"{v:.3f}")


def why_top_model(board: pd.DataFrame, metric: str = "auto") -> str:
    """One paragraph, with the numbers, on why the top model ranks first under ``metric``."""
    top = board[board["model_id"] == top_model_id(board, metric)].iloc[0]
    by_silhouette = board[board["status"] == "ok"].sort_values(["silhouette", "model_id"], ascending=[False, True],
                                                               na_position="last").iloc[0]
    if metric == "silhouette":
        return (f"{top['model_id']} ranks first by validation silhouette ({top['silhouette']:.3f}); its stability "
                f"under resampling is {top['stability']:.2f}.")
    why = f"{top['model_id']} ranks first: {_how_picked(top)}"
    picks = board[board["algorithm_pick"] != ""]
    if len(picks) > 1 and picks["agreement"].notna().all():
        runner_up = picks.iloc[1]
        why += (f" Of the {len(picks)} algorithms' picks ({', '.join(picks['model_id'])}), its clusters agree the most "
                f"with every other model's (mean adjusted Rand index {top['agreement']:.3f}; next "
                f"{runner_up['model_id']} {runner_up['agreement']:.3f}).")
    why += (f" Its silhouette on the pooled rows is {top['silhouette_pooled']:.3f}, against "
            f"{top['reference_silhouette']:.3f} for as many clusters on structureless data of the same spread "
            f"(excess {top['silhouette_excess']:+.3f}, clusters under 2% of the rows counted as noise); its "
            f"stability under resampling is {top['stability']:.2f}.")
    if by_silhouette["model_id"] != top["model_id"]:
        why += (f" By validation silhouette alone {by_silhouette['model_id']} would rank first "
                f"({by_silhouette['silhouette']:.3f} vs {top['silhouette']:.3f}): silhouette favours few clusters "
                "on elongated data and lattices of one-hot levels, which the structureless reference, the "
                "stability rule and the agreement discount.")
    return why


def _how_picked(model: pd.Series) -> str:
    if model["algorithm_pick"] == PICKED_BY_BIC:
        return f"of the {model['algorithm']} models it has the lowest BIC ({model['bic']:.1f})."
    scope = f"the {model['algorithm']} models" if model["algorithm_pick"] == PICKED_BY_EXCESS else "all models"
    among = (f"of {scope} stable under resampling (stability >= {STABLE})" if model["stability"] >= STABLE
             else f"none of {scope} reached stability {STABLE}; of them all")
    return f"{among}, its silhouette rises the most above the structureless reference."
