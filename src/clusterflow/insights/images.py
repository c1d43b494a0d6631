"""Image Embeddings and Activation Maps.

An image column's values are paths or URIs; relative ones resolve against the
folder of the input table (or an explicit image root), as the image featurizer does.
"""
from __future__ import annotations

import base64
import io
import os
import posixpath
import tempfile
from dataclasses import dataclass

import fsspec
import numpy as np
import pandas as pd
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from ..model import ClusterModel

PROJECTIONS = ("pca", "tsne")


@dataclass(frozen=True)
class ImageSource:
    """Opens the images an image column points to.

    Parameters
    ----------
    root : str or None
        Folder (local path or fsspec URI) that relative paths resolve against.
    storage_options : dict or None
        fsspec options for remote roots.
    """

    root: str | None = None
    storage_options: dict | None = None

    def uri(self, value: str) -> str:
        value = str(value)
        if "://" in value or os.path.isabs(value) or not self.root:
            return value
        return posixpath.join(self.root.rstrip("/"), value)

    def open(self, value: str) -> Image.Image:
        """The image at ``value``, as RGB."""
        with fsspec.open(self.uri(value), "rb", **(self.storage_options or {})) as f:
            image = Image.open(io.BytesIO(f.read()))
            return image.convert("RGB")


def thumbnail_uri(image: Image.Image, size: int = 96, quality: int = 80) -> str:
    """A small JPEG of ``image`` as a ``data:`` URI (embeds in HTML with no file or network access)."""
    thumb = image.copy()
    thumb.thumbnail((size, size))
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def image_embedding(features: np.ndarray, method: str = "pca", random_state: int = 0) -> np.ndarray:
    """A 2-D projection of image feature vectors (PCA, or t-SNE for local neighbourhoods).

    Parameters
    ----------
    features : ndarray of shape (n_images, n_features)
        The image block of the model's featurizer for these rows.
    method : {"pca", "tsne"}, default="pca"
    random_state : int, default=0

    Returns
    -------
    ndarray of shape (n_images, 2), scaled to [0, 1] on each axis.
    """
    if method not in PROJECTIONS:
        raise ValueError(f"method must be one of {PROJECTIONS}, got {method!r}")
    if method == "tsne" and len(features) > 5:
        projected = TSNE(n_components=2, perplexity=min(30.0, (len(features) - 1) / 3),
                         init="pca", random_state=random_state).fit_transform(features)
    else:
        projected = PCA(n_components=2, random_state=random_state).fit_transform(features)
    span = np.ptp(projected, axis=0)
    return (projected - projected.min(axis=0)) / np.where(span > 0, span, 1.0)


@dataclass
class ActivationMap:
    """Occlusion sensitivity of one image: the drop in its cluster's probability per masked patch."""

    row: int
    path: str
    cluster: int
    probability: float
    drop: np.ndarray

    def as_dict(self) -> dict:
        return {"row": self.row, "path": self.path, "cluster": self.cluster, "probability": self.probability,
                "drop": np.round(self.drop, 5).tolist()}


def occlusion_map(model: ClusterModel, row: pd.DataFrame, column: str, source: ImageSource,
                  patches: int = 6) -> ActivationMap:
    """Mask each of ``patches x patches`` patches of one row's image in turn and re-assign.

    Each masked copy (the patch filled with the image's mean colour) goes through the
    model's full pipeline, with the row's other columns unchanged; the map holds how
    much the probability of the row's assigned cluster drops.

    Parameters
    ----------
    model : ClusterModel
    row : DataFrame of one row
        The raw input row.
    column : str
        Its image column.
    source : ImageSource
        Resolves the image path.
    patches : int, default=6
        Patches per side.

    Returns
    -------
    ActivationMap
        ``drop`` has shape ``(patches, patches)``; row 0 is the top of the image.
    """
    image = source.open(row[column].iloc[0])
    pixels = np.asarray(image)
    fill = pixels.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    edges_y = np.linspace(0, pixels.shape[0], patches + 1).round().astype(int)
    edges_x = np.linspace(0, pixels.shape[1], patches + 1).round().astype(int)
    base = model.predict_proba(row)[0]
    cluster_index = int(np.argmax(base))
    with tempfile.TemporaryDirectory(prefix="clusterflow-occlusion-") as workdir:
        paths = []
        for i in range(patches):
            for j in range(patches):
                masked = pixels.copy()
                masked[edges_y[i]:edges_y[i + 1], edges_x[j]:edges_x[j + 1]] = fill
                path = os.path.join(workdir, f"{i}-{j}.png")
                Image.fromarray(masked).save(path)
                paths.append(path)
        batch = pd.concat([row] * len(paths), ignore_index=True)
        batch[column] = paths
        if model.id_column_:  # copies of one row: ids must still identify each row once
            batch[model.id_column_] = [f"{row[model.id_column_].iloc[0]}-occluded-{k}" for k in range(len(paths))]
        proba = model.predict_proba(batch)[:, cluster_index]
    return ActivationMap(int(row.index[0]), str(row[column].iloc[0]), int(model.clusters_[cluster_index]),
                         float(base[cluster_index]), (base[cluster_index] - proba).reshape(patches, patches))
