"""Image columns: paths or URIs of image files, featurized from their pixels.

The default is low-level features, as unsupervised projects use them: a joint
colour histogram with channel statistics, a texture block of gradient-orientation
histograms (HOG-like) over a 2 x 2 grid, and a downscaled thumbnail. Each of the
three groups is standardized and weighted to the same total variance, so the
192-value thumbnail does not outweigh the histogram by width alone. With
``model`` set, a local sentence-transformers CLIP-style model embeds the images
instead.

Images are read in batches (never all decoded at once): on the current Dask
cluster when one is active and the column is large, else in a local loop.
"""
from __future__ import annotations

import functools
import io
import logging
import os
import posixpath
from dataclasses import dataclass
from numbers import Integral

import fsspec
import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..errors import InputValidationError, Problem
from ..roles import MEDIA_FRACTION, RoleDecision, is_missing
from .base import FeaturizeOptions, Modality, require_columns

ON_BAD_IMAGE = ("error", "missing")
WORK_SIZE = 64  # every image is resized to WORK_SIZE x WORK_SIZE before the low-level features
EMBEDDING_SIZE = 448  # images for a model are shrunk to fit this box first (CLIP-style models see 224-336)
THUMBNAIL_SIZE = 8
COLOUR_LEVELS = 4  # per channel: a joint histogram of COLOUR_LEVELS ** 3 bins
ORIENTATIONS = 9
GRID = 2
MAX_LISTED = 20  # bad files listed one by one in a report; the rest are counted
BAD_IMAGE_HINT = "fix or remove these files, or pass --on-bad-image missing to treat them as missing values"
ESCAPE_HINT = "image paths must lie under the image root (the table's folder, or --image-root)"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BadImage:
    """A file that could not be used: its row (index label), path as given, and why."""

    row: object
    path: str
    reason: str


def is_remote(uri: str) -> bool:
    protocol, _ = fsspec.core.split_protocol(uri)
    return protocol not in (None, "file", "local")


def image_root_of(data_uri: str) -> str:
    """The default image root: the folder of the table."""
    return posixpath.dirname(data_uri) if is_remote(data_uri) else os.path.dirname(os.path.abspath(data_uri))


def resolve_image_uri(value: str, root: str) -> str | None:
    """The URI of an image value, relative to ``root`` unless it is absolute; None when outside ``root``.

    ``..`` segments are resolved first, so ``../../etc/passwd`` or an absolute path
    elsewhere never reaches the file system.
    """
    root_protocol, root_path = fsspec.core.split_protocol(root)
    protocol, path = fsspec.core.split_protocol(value)
    if root_protocol in (None, "file", "local"):
        if protocol not in (None, "file", "local"):
            return None
        base = os.path.normpath(os.path.abspath(root_path))
        full = os.path.normpath(path if os.path.isabs(path) else os.path.join(base, path))
        return full if os.path.commonpath([base, full]) == base else None
    base = posixpath.normpath(root_path)
    if protocol is None:
        full = posixpath.normpath(path if path.startswith("/") else posixpath.join(base, path))
    elif protocol == root_protocol:
        full = posixpath.normpath(path)
    else:
        return None
    inside = full == base or full.startswith(base.rstrip("/") + "/")
    return f"{root_protocol}://{full}" if inside else None


def resolve_image_column(values: pd.Series, root: str) -> tuple[pd.Series, list[BadImage]]:
    """Every present value as a URI under ``root``; values that escape it are reported, not resolved."""
    present = ~is_missing(values)
    resolved = pd.Series(None, index=values.index, dtype=object)
    escaped = []
    for row, value in values[present].items():
        uri = resolve_image_uri(str(value).strip(), root)
        if uri is None:
            escaped.append(BadImage(row, str(value), f"outside the image root {root}"))
        else:
            resolved.loc[row] = uri
    return resolved, escaped


def bad_image_problems(column: str, bad: list[BadImage], hint: str = BAD_IMAGE_HINT) -> list[Problem]:
    """One problem per bad file (the first :data:`MAX_LISTED`), then one that counts the rest."""
    problems = [Problem(rule=f"image {b.path!r}: {b.reason}", column=column, rows=(b.row,), hint=hint)
                for b in bad[:MAX_LISTED]]
    if len(bad) > MAX_LISTED:
        rest = bad[MAX_LISTED:]
        problems.append(Problem(rule=f"{len(rest)} more unusable image files", column=column,
                                rows=tuple(b.row for b in rest), n_rows=len(rest), hint=hint))
    return problems


def prepare_image_columns(frame: pd.DataFrame, columns: list[str], root: str,
                          on_bad_image: str = "error") -> tuple[pd.DataFrame, list[Problem]]:
    """Resolve image values to URIs under ``root`` and check that every file exists and decodes.

    Paths outside ``root`` are always problems. Missing or undecodable files are
    problems too, or with ``on_bad_image="missing"`` become missing values.

    Returns
    -------
    frame : DataFrame
        ``frame`` with each image column holding URIs (None where missing).
    problems : list of Problem
        One per unusable file (row, path, reason), for the validation report.
    """
    problems, resolved = [], {}
    for column in columns:
        uris, escaped = resolve_image_column(frame[column], root)
        problems += bad_image_problems(column, escaped, hint=ESCAPE_HINT)
        unreadable = check_image_files(uris)
        if on_bad_image == "missing":
            uris.loc[[b.row for b in unreadable]] = None
            if unreadable:
                logger.warning("column %r: %d unusable image files treated as missing values", column,
                               len(unreadable))
        else:
            problems += bad_image_problems(column, [BadImage(b.row, str(frame.at[b.row, column]), b.reason)
                                                    for b in unreadable])
        resolved[column] = uris
    return frame.assign(**resolved), problems


def check_image_files(uris: pd.Series, threads: int = 8) -> list[BadImage]:
    """Files among ``uris`` (present values) that are missing or do not decode, checked in threads."""
    from concurrent.futures import ThreadPoolExecutor

    present = uris.dropna()
    with ThreadPoolExecutor(threads) as pool:
        reasons = list(pool.map(_unreadable_reason, present.to_numpy()))
    return [BadImage(row, uri, reason) for row, uri, reason in zip(present.index, present, reasons) if reason]


def _unreadable_reason(uri: str) -> str | None:
    try:
        with fsspec.open(uri, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return "file not found"
    except (IsADirectoryError, PermissionError, OSError) as exc:
        return f"cannot read the file: {exc}"
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"not a decodable image: {exc}"
    return None


def _open(uri: str, size: int) -> Image.Image:
    """The image at ``uri`` as RGB; a JPEG is decoded straight at a reduced scale near ``size``."""
    with fsspec.open(uri, "rb") as f:
        data = f.read()
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (size, size))
    return image.convert("RGB")


def _read_batch(uris: list[str | None], prepare, size: int) -> tuple[list[tuple[int, object]], list[tuple[int, str]]]:
    """``prepare(image)`` of each image (decoded near ``size``) as soon as it is read, so a batch never
    holds full-size images; and the unreadable ones as (position, reason). Missing (None) entries are skipped."""
    prepared, bad = [], []
    for i, uri in enumerate(uris):
        if uri is None:
            continue
        try:
            prepared.append((i, prepare(_open(uri, size))))
        except FileNotFoundError:
            bad.append((i, "file not found"))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            bad.append((i, f"not a decodable image: {exc}"))
    return prepared, bad


def _for_features(image: Image.Image) -> np.ndarray:
    return np.asarray(image.resize((WORK_SIZE, WORK_SIZE), Image.BILINEAR, reducing_gap=2.0))


def _for_embedding(image: Image.Image) -> Image.Image:
    image.thumbnail((EMBEDDING_SIZE, EMBEDDING_SIZE))  # the model's processor resizes further
    return image


def low_level_features(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """Colour, texture and thumbnail features of a batch of RGB images (n, s, s, 3) uint8.

    Returns
    -------
    dict of group name -> ndarray of shape (n, width)
        ``colour``: joint RGB histogram (``COLOUR_LEVELS ** 3`` bins, fractions) and the
        mean and standard deviation of each channel; ``texture``: gradient-orientation
        histograms (``ORIENTATIONS`` unsigned bins, magnitude-weighted) over a
        ``GRID x GRID`` grid, each cell normalized, and the mean gradient magnitude;
        ``thumbnail``: the image averaged down to ``THUMBNAIL_SIZE`` x ``THUMBNAIL_SIZE`` RGB.
    """
    n, size = pixels.shape[0], pixels.shape[1]
    rgb = pixels.astype(np.float32) / 255.0
    levels = (pixels // (256 // COLOUR_LEVELS)).astype(np.int64)
    codes = (levels[..., 0] * COLOUR_LEVELS + levels[..., 1]) * COLOUR_LEVELS + levels[..., 2]
    offsets = np.arange(n)[:, None] * COLOUR_LEVELS ** 3
    histogram = np.bincount((codes.reshape(n, -1) + offsets).ravel(), minlength=n * COLOUR_LEVELS ** 3)
    histogram = histogram.reshape(n, -1) / (size * size)
    flat = rgb.reshape(n, -1, 3)
    colour = np.hstack([histogram, flat.mean(axis=1), flat.std(axis=1)])

    gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, :, 1:-1] = gray[:, :, 2:] - gray[:, :, :-2]
    gy[:, 1:-1, :] = gray[:, 2:, :] - gray[:, :-2, :]
    magnitude = np.hypot(gx, gy)
    orientation = np.mod(np.arctan2(gy, gx), np.pi)
    bins = np.minimum((orientation / np.pi * ORIENTATIONS).astype(np.int64), ORIENTATIONS - 1)
    cell = size // GRID
    cells = np.arange(size) // cell
    cell_index = np.minimum(cells[:, None], GRID - 1) * GRID + np.minimum(cells[None, :], GRID - 1)
    slots = (np.arange(n)[:, None, None] * GRID * GRID + cell_index[None]) * ORIENTATIONS + bins
    hog = np.bincount(slots.ravel(), weights=magnitude.ravel(), minlength=n * GRID * GRID * ORIENTATIONS)
    hog = hog.reshape(n, GRID * GRID, ORIENTATIONS)
    hog /= np.linalg.norm(hog, axis=2, keepdims=True) + 1e-6
    texture = np.hstack([hog.reshape(n, -1), magnitude.reshape(n, -1).mean(axis=1, keepdims=True)])

    block = size // THUMBNAIL_SIZE
    thumbnail = rgb.reshape(n, THUMBNAIL_SIZE, block, THUMBNAIL_SIZE, block, 3).mean(axis=(2, 4)).reshape(n, -1)
    return {"colour": colour, "texture": texture, "thumbnail": thumbnail}


@functools.lru_cache(maxsize=2)
def _embedding_model(path: str):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device="cpu", local_files_only=True)


def image_batch_features(uris: list[str | None], model: str | None = None) -> tuple[dict[str, np.ndarray], list]:
    """Feature groups for one batch of image URIs (None = missing), and the bad images as (position, reason).

    Rows of missing or bad images hold NaN. Runs where it is called: in the process,
    or on a Dask worker.
    """
    if model is None:
        decoded, bad = _read_batch(uris, _for_features, WORK_SIZE)
        pixels = np.zeros((len(uris), WORK_SIZE, WORK_SIZE, 3), dtype=np.uint8)
        for i, array in decoded:
            pixels[i] = array
        groups = low_level_features(pixels)
    else:
        images, bad = _read_batch(uris, _for_embedding, EMBEDDING_SIZE)
        encoder = _embedding_model(model)
        embedding = np.zeros((len(uris), encoder.get_embedding_dimension()), dtype=np.float32)
        if images:
            embedding[[i for i, _ in images]] = encoder.encode([im for _, im in images], convert_to_numpy=True)
        groups = {"embedding": embedding}
    unusable = [i for i, uri in enumerate(uris) if uri is None] + [i for i, _ in bad]
    groups = {name: values.astype(np.float64) for name, values in groups.items()}
    for values in groups.values():
        values[unusable] = np.nan
    return groups, bad


def _current_client():
    """The active Dask client of this process, or None (also None on a Dask worker)."""
    from distributed import default_client, get_worker

    try:
        get_worker()
        return None
    except ValueError:
        pass
    try:
        return default_client()
    except ValueError:
        return None


class ImageFeaturizer(TransformerMixin, BaseEstimator):
    """Features of the images that one or more columns point to.

    Each column's values are paths or URIs (any fsspec location) of image files, as
    :func:`prepare_image_columns` resolves them from a table. Missing values get the
    training mean and a missing flag.

    Parameters
    ----------
    model : str or None, default=None
        Path of a local sentence-transformers CLIP-style model: embed images with it
        instead of the low-level features.
    on_bad_image : {"error", "missing"}, default="error"
        A missing or undecodable file raises :class:`~clusterflow.errors.InputValidationError`
        listing every such file, or is treated as a missing value.
    batch_size : int, default=256
        Images decoded at a time.
    parallel_min_images : int, default=4000
        From this many images, batches are mapped over the current Dask cluster (if a
        client is active); fewer are read in a local loop.

    Attributes
    ----------
    groups_ : list of str
        Feature groups per column, in output order.
    mean_, scale_ : ndarray of shape (n_features,)
        Standardization of the raw features, group weights folded into ``scale_``.
    feature_names_out_ : ndarray of str
        Output feature names.
    column_details_ : dict of str -> dict
        Per column: feature groups and widths, missing training images and a one-line summary.

    Examples
    --------
    >>> import pandas as pd
    >>> from clusterflow.modalities.image import ImageFeaturizer
    >>> photos = pd.DataFrame({"photo": ["a.png", "b.png", "c.png"]})
    >>> ImageFeaturizer().fit_transform(photos).shape  # doctest: +SKIP
    (3, 310)
    """

    _parameter_constraints = {
        "model": [str, None],
        "on_bad_image": [StrOptions(set(ON_BAD_IMAGE))],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "parallel_min_images": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, model=None, on_bad_image="error", batch_size=256, parallel_min_images=4000):
        self.model = model
        self.on_bad_image = on_bad_image
        self.batch_size = batch_size
        self.parallel_min_images = parallel_min_images

    def fit(self, X, y=None):
        """Read the images of ``X`` and learn the standardization of their features."""
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit and return the features of ``X``, reading its images once."""
        return self._standardize(self._fit(X))

    def transform(self, X):
        """Features of the images of ``X``, standardized as learned in ``fit``."""
        check_is_fitted(self)
        require_columns(X, self.feature_names_in_)
        raw, _, _ = self._raw_features(X[list(self.feature_names_in_)])
        return self._standardize(raw)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return self.feature_names_out_

    def _fit(self, X: pd.DataFrame) -> np.ndarray:
        self._validate_params()
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        raw, names, group_of = self._raw_features(X)
        present = ~np.isnan(raw)
        counts = np.maximum(present.sum(axis=0), 1)
        self.mean_ = np.where(present, raw, 0.0).sum(axis=0) / counts
        std = np.sqrt(np.where(present, (raw - self.mean_) ** 2, 0.0).sum(axis=0) / counts)
        group_of = np.asarray(group_of)
        width = {group: int((group_of == group).sum()) for group in set(group_of)}
        weight = np.array([1.0 / np.sqrt(width[group]) for group in group_of])
        self.scale_ = np.where(std > 0, weight / np.where(std > 0, std, 1.0), 0.0)
        # missing flags stay 0/1, as in the numeric block: a few missing images must not outweigh the pixels
        flags = np.char.endswith(group_of.astype(str), ":missing")
        self.mean_[flags], self.scale_[flags] = 0.0, 1.0
        self.groups_ = list(dict.fromkeys(group_of))
        self.feature_names_out_ = np.asarray(names, dtype=object)
        self.column_details_ = {column: self._details(column, raw, group_of) for column in self.feature_names_in_}
        return raw

    def _details(self, column: str, raw: np.ndarray, group_of: np.ndarray) -> dict:
        widths = {group.split(":", 1)[1]: int((group_of == group).sum())
                  for group in self.groups_ if group.startswith(f"{column}:")}
        missing = int(raw[:, np.flatnonzero(group_of == f"{column}:missing")[0]].sum())
        parts = ", ".join(f"{group} {width}" for group, width in widths.items() if group != "missing")
        source = f"embedding of {self.model}" if self.model else "low-level"
        return {"features": widths, "missing": missing, "rows": len(raw),
                "summary": f"{source}: {parts}, missing flag ({missing} of {len(raw)} training images missing)"}

    def _standardize(self, raw: np.ndarray) -> np.ndarray:
        return (np.where(np.isnan(raw), self.mean_, raw) - self.mean_) * self.scale_

    def _raw_features(self, X: pd.DataFrame) -> tuple[np.ndarray, list[str], list[str]]:
        """Raw features per column side by side (NaN where an image is missing), names and groups."""
        blocks, names, group_of, problems = [], [], [], []
        for column in X.columns:
            values = X[column]
            uris = [None if missing else str(v).strip() for v, missing in zip(values, is_missing(values))]
            groups, unreadable = self._read(uris)
            if unreadable and self.on_bad_image == "error":
                problems += bad_image_problems(str(column), [BadImage(values.index[i], uris[i], reason)
                                                             for i, reason in unreadable])
            for group, features in groups.items():
                blocks.append(features)
                names += [f"{column}_{group}{j}" for j in range(features.shape[1])]
                group_of += [f"{column}:{group}"] * features.shape[1]
            blocks.append(np.isnan(features[:, :1]).astype(float))
            names.append(f"{column}_missing")
            group_of.append(f"{column}:missing")
        if problems:
            raise InputValidationError(problems)
        return np.hstack(blocks), names, group_of

    def _read(self, uris: list[str | None]) -> tuple[dict[str, np.ndarray], list[tuple[int, str]]]:
        starts = range(0, max(len(uris), 1), self.batch_size)
        batches = [uris[s:s + self.batch_size] for s in starts]
        client = _current_client() if len(uris) >= self.parallel_min_images else None
        if client is not None:
            futures = client.map(image_batch_features, batches, model=self.model, pure=False)
            results = client.gather(futures)
        else:
            results = (image_batch_features(batch, self.model) for batch in batches)
        parts, bad = [], []
        for start, (groups, batch_bad) in zip(starts, results):
            parts.append(groups)
            bad += [(start + i, reason) for i, reason in batch_bad]
        groups = {name: np.vstack([p[name] for p in parts]) for name in parts[0]}
        return groups, bad


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")


def infer_image_path(name: str, values: pd.Series, present: pd.Series) -> RoleDecision | None:
    if pd.api.types.is_numeric_dtype(values) or present.empty:
        return None
    fraction = present.astype(str).str.strip().str.lower().str.endswith(IMAGE_EXTENSIONS).mean()
    if fraction >= MEDIA_FRACTION:
        return RoleDecision(name, "image", f"{fraction:.0%} of values are image file names")
    return None


def make_image_featurizer(columns: list[str], options: FeaturizeOptions) -> ImageFeaturizer:
    return ImageFeaturizer(model=options.image_model, on_bad_image=options.on_bad_image)


def image_profile(frame: pd.DataFrame, column: str, labels: np.ndarray, distances: np.ndarray, seed: int) -> dict:
    from ..insights.profiles import image_profile

    return image_profile(frame[column], labels, distances)


IMAGE = Modality("image", ("image",), make_image_featurizer,
                 "colour histogram, HOG-like texture and an 8x8 thumbnail (or a local CLIP-style model's embedding)",
                 describe_fitted=lambda featurizer: featurizer.column_details_,
                 rules=(infer_image_path,), profile=image_profile)
