"""Reclustering: compare a new run with the dataset's promoted model, keep cluster ids stable, decide promotion.

The new rows are assigned by both models; rows unlike any the promoted model was
trained on (novel rows) belong to none of its clusters, so a new segment that the old
model can only force into its nearest cluster does not pass for that cluster. Old and
new clusters are matched one to
one (Hungarian assignment on the Jaccard overlap of their rows); a matched pair that
overlaps by more than half is the same cluster, which keeps its id. What is left is described
as splits, merges, appearances and disappearances, and the stability of the whole is
the adjusted Rand index of the two assignments of the same rows.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors

from .algorithms import NOISE
from .errors import InputValidationError
from .model import labels_file, load_model
from .promotion import Promotion, read_promoted
from .run_folder import (ASSIGNMENTS, LABELS_FILE, RECLUSTER, SCHEMA_FILE, Manifest, ReclusterRecord, RunFolder,
                         RunLock, model_file)
from .storage import frame_to_parquet_bytes, read_table


@dataclass
class ClusterChanges:
    """How the new clusters relate to the old ones, and the ids the new clusters get.

    ``labels`` maps each new cluster (the new model's own label) to its id: the old
    id when it persisted, else a fresh one. ``split`` maps an old id to the ids its
    rows went to, ``merged`` a new id to the old ids it absorbed.
    """

    labels: dict[int, int]
    persisted: dict[int, float]
    split: dict[int, list[int]]
    merged: dict[int, list[int]]
    appeared: list[int]
    vanished: list[int]
    stability: float
    rows: int
    next_cluster_id: int
    novel_rows: int = 0


def match_clusters(old: np.ndarray, new: np.ndarray, old_clusters, new_clusters, next_cluster_id: int, *,
                   min_jaccard: float = 0.5, split_share: float = 0.2, merge_share: float = 0.5) -> ClusterChanges:
    """Match the new clusters to the old ones from two assignments of the same rows.

    Parameters
    ----------
    old, new : array of int
        The old model's cluster ids and the new model's labels for the same rows (-1 = noise).
    old_clusters, new_clusters : array-like of int
        Every cluster of each model (a cluster may have no rows here).
    next_cluster_id : int
        The first id never used for this dataset: unmatched new clusters count up from it.
    min_jaccard : float
        A matched pair is the same cluster when its rows' Jaccard overlap exceeds this
        (above one half, a cluster can have at most one such partner).
    split_share : float
        An old cluster that did not persist split when at least two new clusters each
        hold this share of its rows.
    merge_share : float
        A new cluster is a merge when it holds this share of the rows of each of two or
        more old clusters.

    Returns
    -------
    ClusterChanges
    """
    old, new = np.asarray(old, dtype=int), np.asarray(new, dtype=int)
    old_ids, new_ids = [int(c) for c in old_clusters], [int(c) for c in new_clusters]
    both = (old != NOISE) & (new != NOISE)
    overlap = pd.crosstab(old[both], new[both]).reindex(index=old_ids, columns=new_ids, fill_value=0).to_numpy()
    old_n = np.array([(old == c).sum() for c in old_ids])[:, None]
    new_n = np.array([(new == c).sum() for c in new_ids])[None, :]
    jaccard = overlap / np.maximum(old_n + new_n - overlap, 1)

    rows, cols = linear_sum_assignment(-jaccard)
    pairs = {j: i for i, j in zip(rows, cols) if jaccard[i, j] > min_jaccard}
    labels, fresh = {}, next_cluster_id
    for j, label in enumerate(new_ids):
        if j in pairs:
            labels[label] = old_ids[pairs[j]]
        else:
            labels[label], fresh = fresh, fresh + 1

    persisted_old = set(pairs.values())
    split = {}
    for i, old_id in enumerate(old_ids):
        targets = np.flatnonzero(overlap[i] >= split_share * max(old_n[i, 0], 1))
        if i not in persisted_old and old_n[i, 0] and len(targets) >= 2:
            split[old_id] = [labels[new_ids[j]] for j in targets]
    merged = {}
    for j, label in enumerate(new_ids):
        sources = np.flatnonzero((overlap[:, j] >= merge_share * old_n[:, 0]) & (old_n[:, 0] > 0))
        if len(sources) >= 2:
            merged[labels[label]] = [old_ids[i] for i in sources]
    in_split = {c for targets in split.values() for c in targets}
    in_merge = {c for sources in merged.values() for c in sources}
    return ClusterChanges(
        labels=labels,
        persisted={old_ids[i]: round(float(jaccard[i, j]), 4) for j, i in sorted(pairs.items(), key=lambda p: p[1])},
        split=split, merged=merged,
        appeared=[labels[c] for j, c in enumerate(new_ids)
                  if j not in pairs and labels[c] not in in_split and labels[c] not in merged],
        vanished=[c for i, c in enumerate(old_ids) if i not in persisted_old and c not in split and c not in in_merge],
        stability=float(adjusted_rand_score(old, new)), rows=len(old), next_cluster_id=fresh,
    )


def novel_rows(Z: np.ndarray, known: np.ndarray, *, sample: int = 5000, quantile: float = 0.99,
               seed: int = 0) -> np.ndarray:
    """Which rows of ``Z`` are farther from every ``known`` row than ``quantile`` of known
    rows are from their nearest neighbour (both in the promoted model's feature space)."""
    rng = np.random.default_rng(seed)
    known = known[np.sort(rng.choice(len(known), min(sample, len(known)), replace=False))]
    neighbours = NearestNeighbors(n_neighbors=2).fit(known)
    typical = np.quantile(neighbours.kneighbors(known)[0][:, 1], quantile)
    return neighbours.kneighbors(Z, n_neighbors=1)[0][:, 0] > typical


@dataclass(frozen=True)
class PromotionPolicy:
    """Promote the new top model unless its validation silhouette is worse than the
    promoted model's by more than ``tolerance``."""

    tolerance: float = 0.05

    def decide(self, silhouette: float | None, promoted: Promotion | None, problem: str | None = None
               ) -> tuple[bool, list[str]]:
        """Whether to promote, and the reasons in words."""
        if promoted is None:
            return True, ["no model was promoted for this dataset yet"]
        if problem:
            return False, [problem]
        if silhouette is None or math.isnan(silhouette):
            return False, ["the new top model has no validation silhouette"]
        if promoted.silhouette is None:
            return True, ["the promoted model has no validation silhouette"]
        drop = promoted.silhouette - silhouette
        verdict = (f"silhouette {silhouette:.3f} vs {promoted.silhouette:.3f} of the promoted model "
                   f"{promoted.model_id}")
        if drop <= self.tolerance:
            return True, [f"{verdict}: not worse by more than the tolerance {self.tolerance}"]
        return False, [f"{verdict}: worse by {drop:.3f}, more than the tolerance {self.tolerance}"]


@dataclass
class ReclusterReport:
    """The comparison of a new run with the promoted model, and the promotion decision."""

    dataset: str
    run_uri: str
    model_id: str
    silhouette: float | None
    promote: bool
    reasons: list[str]
    labels: dict[int, int]
    next_cluster_id: int
    previous: dict | None = None
    changes: dict | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def compare_with_promoted(run_uri: str, runs_root: str, dataset: str, policy: PromotionPolicy | None = None,
                          storage_options: dict | None = None) -> ReclusterReport:
    """Match the top model of the run at ``run_uri`` to the dataset's promoted model on the run's rows."""
    policy = policy or PromotionPolicy()
    folder = RunFolder(run_uri, storage_options)
    manifest = folder.manifest()
    top = manifest.top_model
    silhouette = float(folder.leaderboard(manifest).set_index("model_id").loc[top, "silhouette"])
    silhouette = None if math.isnan(silhouette) else silhouette
    new_clusters = folder.read_json(model_file(top, SCHEMA_FILE), manifest)["clusters"]
    promoted = read_promoted(runs_root, dataset, storage_options)
    changes, problem = None, None
    if promoted is None:
        labels = {int(c): int(c) for c in new_clusters}
        next_id = max(new_clusters, default=-1) + 1
    else:
        new = folder.assignments(manifest)["cluster"].to_numpy()
        old_model = load_model(promoted.model_uri, storage_options)
        frame = read_table(manifest.input.uri, storage_options)
        try:
            Z = old_model.transform(frame)
        except InputValidationError as exc:
            problem = f"the promoted model cannot score the new data: {exc}"
        if problem:
            labels = {int(c): int(c) for c in new_clusters}
            next_id = max([promoted.next_cluster_id, *(c + 1 for c in new_clusters)])
        else:
            old = old_model.assignments(frame, Z)["cluster"].to_numpy()
            promoted_run = RunFolder(promoted.run_uri, storage_options)
            known = promoted_run.features(promoted_run.manifest()).X_train
            novel = novel_rows(Z, known)
            matched = match_clusters(np.where(novel, NOISE, old), new, old_model.clusters_, new_clusters,
                                     promoted.next_cluster_id)
            matched.novel_rows = int(novel.sum())
            matched.stability = float(adjusted_rand_score(old, new))
            labels, next_id, changes = matched.labels, matched.next_cluster_id, asdict(matched)
    promote, reasons = policy.decide(silhouette, promoted, problem)
    if changes is not None:
        reasons.append(f"stability (adjusted Rand index of old and new assignments of the same rows) "
                       f"{changes['stability']:.3f}")
    return ReclusterReport(dataset, run_uri, top, silhouette, promote, reasons, labels, next_id,
                           asdict(promoted) if promoted else None, changes)


def publish_recluster(report: ReclusterReport, lock: RunLock, storage_options: dict | None = None) -> Manifest:
    """Give the run's top model its stable cluster ids and record the comparison in the run.

    Writes ``models/<top>/labels.json``, the relabelled ``assignments.parquet`` and
    ``recluster.json``, then commits the run's next revision (the caller holds the run's
    ``lock``). Returns the new manifest.
    """
    folder = RunFolder(report.run_uri, storage_options)
    manifest = folder.manifest()
    assignments = relabel_assignments(folder.assignments(manifest), report.labels)
    summary = ReclusterRecord(dataset=report.dataset, promoted=report.promote, reasons=report.reasons,
                              previous=report.previous and {k: report.previous[k] for k in ("run_uri", "model_id")},
                              report=RECLUSTER)
    draft = folder.stage(manifest.next_revision(dataset=report.dataset, recluster=summary),
                         {model_file(report.model_id, LABELS_FILE): labels_file(report.labels),
                          ASSIGNMENTS: frame_to_parquet_bytes(assignments), RECLUSTER: report.to_json()})
    return folder.commit(draft, lock)


def relabel_assignments(frame: pd.DataFrame, labels: dict[int, int]) -> pd.DataFrame:
    """An assignments frame with cluster ids (``cluster`` and ``p_<id>`` columns) mapped through ``labels``."""
    mapped = frame["cluster"].map(lambda c: labels.get(int(c), int(c))).astype(int)
    renames = {f"p_{raw}": f"p_{stable}" for raw, stable in labels.items()}
    return frame.assign(cluster=mapped).rename(columns=renames)


def report_markdown(report: ReclusterReport) -> str:
    """The comparison and the decision, for the Prefect UI."""
    verdict = "promoted" if report.promote else "not promoted"
    lines = [f"# Recluster of `{report.dataset}`: {verdict}", "",
             f"New top model **{report.model_id}** of `{report.run_uri}`"
             + (f", silhouette {report.silhouette:.3f}." if report.silhouette is not None else "."), "",
             "Reasons:", *(f"- {r}" for r in report.reasons), ""]
    if report.previous:
        lines += [f"Compared with **{report.previous['model_id']}** of `{report.previous['run_uri']}`.", ""]
    changes = report.changes
    if changes:
        lines += ["| change | clusters |", "| --- | --- |",
                  f"| persisted | {', '.join(map(str, changes['persisted'])) or '-'} |",
                  f"| split | {'; '.join(f'{o} -> {t}' for o, t in changes['split'].items()) or '-'} |",
                  f"| merged | {'; '.join(f'{s} -> {n}' for n, s in changes['merged'].items()) or '-'} |",
                  f"| appeared | {', '.join(map(str, changes['appeared'])) or '-'} |",
                  f"| vanished | {', '.join(map(str, changes['vanished'])) or '-'} |", "",
                  f"Stability (ARI on {changes['rows']:,} rows): {changes['stability']:.3f}; "
                  f"{changes['novel_rows']:,} rows unlike any the promoted model was trained on."]
    return "\n".join(lines) + "\n"
