"""A blueprint: featurizers per modality -> reducer -> clusterer, as scikit-learn pieces.

The featurizer and reducer are fitted once per run on the train partition; every
candidate clusterer is fitted on the reduced matrix, and a published model is the
three joined in one :class:`sklearn.pipeline.Pipeline`.
"""
from __future__ import annotations

from dataclasses import replace

from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline, make_pipeline

from .modalities import MODALITIES
from .modalities.base import FeaturizeOptions, TotalVarianceScaler
from .roles import RoleDecision


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


def make_reducer(n_features: int, max_components: int, seed: int):
    """PCA down to ``max_components`` when the matrix is wider, else a pass-through."""
    if n_features <= max_components:
        return "passthrough"
    return PCA(n_components=max_components, random_state=seed)


def join(featurizer, reducer, clusterer) -> Pipeline:
    """The fitted pieces as one pipeline: raw table in, clusters out."""
    return Pipeline([("featurizer", featurizer), ("reducer", reducer), ("clusterer", clusterer)])
