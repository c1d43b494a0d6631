"""A blueprint: featurizers per modality -> reducer -> clusterer, as scikit-learn pieces.

The featurizer and reducer are fitted once per run on the train partition; every
candidate clusterer is fitted on the reduced matrix, and a published model is the
three joined in one :class:`sklearn.pipeline.Pipeline`.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline, make_pipeline

from .modalities import MODALITIES
from .modalities.base import FeaturizeOptions, TotalVarianceScaler
from .roles import RoleDecision
from .scoring import cluster_structure

# A block's share of the variance may move this far from an equal share by its cluster structure.
STRUCTURE_SHARE_RANGE = (0.25, 4.0)
STRUCTURE_FLOOR = 0.01  # structure at or below this (or unmeasurable) counts as this: no block divides by zero


def modality_columns(decisions: list[RoleDecision]) -> dict[str, list[str]]:
    """Feature columns grouped by modality, in the registry's order."""
    return {
        name: cols for name, modality in MODALITIES.items()
        if (cols := [d.column for d in decisions if d.role in modality.roles])
    }


def block_weights(columns: dict[str, list[str]], user_weights: dict[str, float]) -> dict[str, float]:
    """Each block's total variance: one unit per input column, but at least half of an equal share
    (the input columns over twice the blocks), times the user's weight.

    Units per column keep a wide block from outweighing a narrow one by its width; the floor keeps
    one informative location or text column from drowning under dozens of numeric ones (measured on
    bench/quality.py; equal shares for every block let two label columns of a customer table form a
    lattice that outranked its planted segments).
    """
    unknown = set(user_weights) - set(MODALITIES)
    if unknown:
        raise ValueError(f"--weights names unknown modalities {sorted(unknown)}; modalities are {sorted(MODALITIES)}")
    floor = sum(len(cols) for cols in columns.values()) / (2 * len(columns)) if columns else 0.0
    return {name: max(len(cols), floor) * user_weights.get(name, 1.0) for name, cols in columns.items()}


def make_featurizer(decisions: list[RoleDecision], user_weights: dict[str, float] | None = None,
                    options: FeaturizeOptions | None = None) -> ColumnTransformer:
    """A ColumnTransformer with one weighted block per modality present in ``decisions``."""
    columns = modality_columns(decisions)
    weights = block_weights(columns, user_weights or {})
    options = replace(options or FeaturizeOptions(), roles=tuple((d.column, d.role) for d in decisions))
    blocks = [
        (name, make_pipeline(MODALITIES[name].make_featurizer(cols, options), TotalVarianceScaler(weights[name])),
         cols)
        for name, cols in columns.items()
    ]
    return ColumnTransformer(blocks, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=True)


def weigh_blocks_by_structure(featurizer: ColumnTransformer, F: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
    """Give the fitted ``featurizer``'s blocks shares of the variance by their cluster structure.

    ``F`` is the featurizer's output on the rows it was fitted on. Each block whose modality is
    ``weighed_by_structure`` has its :func:`clusterflow.scoring.cluster_structure` measured;
    when two or more such blocks exist, each block's total variance is multiplied by its
    structure over their mean (within :data:`STRUCTURE_SHARE_RANGE`), so a block that holds the
    groups (a location, a text) is not drowned by one that holds none. A block whose structure
    cannot be measured (constant, too few rows) keeps its weight. The blocks' scalers, fitted
    and unfitted, are updated in place: their ``total_variance`` says the weight given, and a
    clone of ``featurizer`` refitted gives its blocks the same weights without measuring again.
    Returns ``F`` rescaled and, per weighted block, its structure and share.
    """
    blocks = {
        name: featurizer.output_indices_[name] for name, _, _ in featurizer.transformers_
        if name in MODALITIES and MODALITIES[name].weighed_by_structure
        and featurizer.output_indices_[name].stop > featurizer.output_indices_[name].start
    }
    if len(blocks) < 2:
        return F, {}
    structure = {name: value for name, columns in blocks.items()
                 if np.isfinite(value := cluster_structure(F[:, columns], seed))}
    if len(structure) < 2:
        return F, {}
    floored = {name: max(value, STRUCTURE_FLOOR) for name, value in structure.items()}
    mean = float(np.mean(list(floored.values())))
    templates = {name: template for name, template, _ in featurizer.transformers}
    weighting = {}
    for name in structure:
        share = float(np.clip(floored[name] / mean, *STRUCTURE_SHARE_RANGE))
        scaler = featurizer.named_transformers_[name][-1].reweigh(share)
        templates[name][-1].set_params(total_variance=scaler.total_variance)
        F[:, blocks[name]] *= np.sqrt(share)
        weighting[name] = {"structure": structure[name], "structure_share": share}
    return F, weighting


def make_reducer(n_features: int, max_components: int, seed: int):
    """PCA down to ``max_components`` when the matrix is wider, else a pass-through."""
    if n_features <= max_components:
        return "passthrough"
    return PCA(n_components=max_components, random_state=seed)


def join(featurizer, reducer, clusterer) -> Pipeline:
    """The fitted pieces as one pipeline: raw table in, clusters out."""
    return Pipeline([("featurizer", featurizer), ("reducer", reducer), ("clusterer", clusterer)])
