"""Feature Impact: how much the cluster assignment depends on each input column.

Permutation importance for clustering: shuffle one input column over the
validation rows, re-assign the rows with the fitted model, and measure how much
the assignment moves: the share of rows that change cluster, and the RMSE of the
membership probabilities. Permuting every column of a modality together gives the
impact of the whole block.

Featurizers are row-wise once fitted, so each block's output is computed once and
a permutation of a one-column block is a permutation of its output rows; only
blocks of several columns are re-featurized when one of their columns is shuffled.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..model import ClusterModel
from ..roles import as_numbers

IMPACT_COLUMNS = ["feature", "modality", "changed_share", "proba_rmse", "impact"]


class _Blocks:
    """The fitted model split into per-modality featurizer blocks, reducer and clusterer."""

    def __init__(self, model: ClusterModel, frame: pd.DataFrame):
        featurizer, self.reducer, self.clusterer = (step for _, step in model.pipeline_.steps)
        weights = featurizer.transformer_weights or {}
        self.blocks = [(name, transformer, list(columns), weights.get(name, 1.0))
                       for name, transformer, columns in featurizer.transformers_
                       if name != "remainder" and transformer not in ("drop", "passthrough") and len(columns)]
        self.frame = frame
        self.outputs = {name: self.transform_block(name, frame) for name, *_ in self.blocks}

    def transform_block(self, name: str, frame: pd.DataFrame) -> np.ndarray:
        _, transformer, columns, weight = next(b for b in self.blocks if b[0] == name)
        return np.asarray(transformer.transform(frame[columns]), dtype=float) * weight

    def assign(self, outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        F = np.hstack([outputs[name] for name, *_ in self.blocks])
        Z = F if isinstance(self.reducer, str) else self.reducer.transform(F)
        return self.clusterer.predict(Z), self.clusterer.predict_proba(Z)


def feature_impact(model: ClusterModel, frame: pd.DataFrame, *, max_rows: int = 2000, max_columns: int = 100,
                   random_state: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Permutation impact of each input column and of each modality block on the assignments.

    Parameters
    ----------
    model : ClusterModel
        A fitted model.
    frame : DataFrame
        Rows to measure on (the validation partition); a seeded sample of ``max_rows``.
    max_rows : int, default=2000
        Rows used at most.
    max_columns : int, default=100
        Columns measured one by one at most: past it, those whose values differ most
        between the clusters (:func:`most_separated`). A block wider than this is
        measured whole only (each of its columns would re-featurize all of it), so a
        table thousands of columns wide costs about what a hundred columns do.
    random_state : int, default=0
        Seed of the sample and of the permutations.

    Returns
    -------
    columns, modalities : DataFrame
        One row per input column (per modality block): ``feature``, ``modality``,
        ``changed_share`` (share of rows whose cluster changes), ``proba_rmse`` (RMSE
        of the membership probabilities) and ``impact``, the mean of the two after
        each is divided by its largest value, rescaled so the top feature is 1.
        Sorted by impact, highest first.

    Examples
    --------
    >>> columns, modalities = feature_impact(model, validation_rows)  # doctest: +SKIP
    >>> columns.head(3)  # doctest: +SKIP
    """
    rng = np.random.default_rng(random_state)
    if len(frame) > max_rows:
        frame = frame.iloc[np.sort(rng.choice(len(frame), max_rows, replace=False))]
    frame = frame.reset_index(drop=True)
    blocks = _Blocks(model, frame)
    labels, proba = blocks.assign(blocks.outputs)
    measured = most_separated(frame, [c for _, _, columns, _ in blocks.blocks if len(columns) <= max_columns
                                      for c in columns], labels, max_columns)
    column_rows, block_rows = [], []
    for name, _, columns, _ in blocks.blocks:
        order = rng.permutation(len(frame))
        shuffled = {**blocks.outputs, name: blocks.outputs[name][order]}
        block_rows.append({"feature": name, "modality": name, **_change(blocks.assign(shuffled), labels, proba)})
        for column in (c for c in columns if c in measured):
            order = rng.permutation(len(frame))
            if len(columns) == 1:
                output = blocks.outputs[name][order]
            else:
                permuted = frame.copy()
                permuted[column] = frame[column].to_numpy()[order]
                output = blocks.transform_block(name, permuted)
            changed = _change(blocks.assign({**blocks.outputs, name: output}), labels, proba)
            column_rows.append({"feature": column, "modality": name, **changed})
    return _normalise(pd.DataFrame(column_rows)), _normalise(pd.DataFrame(block_rows))


def most_separated(frame: pd.DataFrame, columns: list[str], labels: np.ndarray, limit: int) -> set[str]:
    """``columns`` if at most ``limit``, else the ``limit`` whose values differ most between clusters.

    The score is the correlation ratio (between-cluster share of the variance) of each
    column's numbers, or of its category codes: one vectorised pass, no refitting.
    """
    if len(columns) <= limit:
        return set(columns)
    values = np.column_stack([_as_scores(frame[column]) for column in columns])
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    members = (labels[:, None] == np.unique(labels)[None, :]).astype(float)  # rows x clusters
    counts, sums = members.T @ present, members.T @ filled
    n = np.maximum(present.sum(axis=0), 1)
    mean = filled.sum(axis=0) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        between = np.nansum(counts * (sums / counts - mean) ** 2, axis=0) / n
    total = (((filled - mean) ** 2) * present).sum(axis=0) / n
    scores = np.where(total > 0, between / np.where(total > 0, total, 1.0), 0.0)
    return {columns[i] for i in np.argsort(-scores, kind="stable")[:limit]}


def _as_scores(values: pd.Series) -> np.ndarray:
    """A column as floats to score: its numbers, or its category codes when it is mostly not numbers."""
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=float)
    numbers = as_numbers(values)
    if numbers.notna().mean() >= 0.5:
        return numbers.to_numpy(dtype=float)
    codes = pd.factorize(values)[0].astype(float)
    return np.where(codes >= 0, codes, np.nan)


def _change(assigned: tuple[np.ndarray, np.ndarray], labels: np.ndarray, proba: np.ndarray) -> dict:
    new_labels, new_proba = assigned
    return {"changed_share": float(np.mean(new_labels != labels)),
            "proba_rmse": float(np.sqrt(np.mean((new_proba - proba) ** 2))) if proba.size else 0.0}


def _normalise(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return pd.DataFrame(columns=IMPACT_COLUMNS)
    parts = [table[c] / table[c].max() if table[c].max() > 0 else table[c] * 0.0
             for c in ("changed_share", "proba_rmse")]
    score = (parts[0] + parts[1]) / 2
    table["impact"] = score / score.max() if score.max() > 0 else score
    return table.sort_values(["impact", "feature"], ascending=[False, True], kind="stable").reset_index(drop=True)
