"""Tables and models with planted answers, shared by the unit and integration tests."""
from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer

from clusterflow.algorithms import Clusterer
from clusterflow.model import ClusterModel

EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
EXPECTED_ROLES = {
    "posted_iso": "datetime", "posted_eu": "datetime", "created_at": "datetime",
    "active": "numeric", "subscribed": "numeric", "verified": "numeric", "flag": "numeric",
    "product": "categorical", "order_key": "id", "session": "ignore", "review": "text", "amount": "numeric",
}


def realworld_table(n: int = 12_000, seed: int = 0) -> pd.DataFrame:
    """Each kind of awkward column once: dates three ways, booleans four ways, 5,000 levels, keys, prose."""
    rng = np.random.default_rng(seed)
    stamps = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 365 * 86_400, n), unit="s")
    offsets = rng.choice([0, 2, -5], n)  # the same instants written in three time zones
    iso = [(s + pd.Timedelta(hours=int(h))).strftime("%Y-%m-%dT%H:%M:%S") + (f"{h:+03d}:00" if h else "Z")
           for s, h in zip(stamps, offsets)]
    levels = np.concatenate([np.arange(5_000), rng.zipf(1.3, n - 5_000) % 5_000])  # every level at least once
    words = np.array("the parcel came late but the support team was kind and quick to refund me".split())
    frame = pd.DataFrame({
        "posted_iso": iso,
        "posted_eu": stamps.strftime("%d/%m/%Y %H:%M"),
        "created_at": ((stamps - EPOCH) // pd.Timedelta(seconds=1)).astype("int64"),
        "active": rng.choice(["true", "false", "TRUE", "False"], n),
        "subscribed": rng.choice(["yes", "no", "Yes", "NO"], n),
        "verified": rng.choice(["t", "f", "T", "F"], n),
        "flag": rng.choice([True, False], n),
        "product": [f"SKU-{v:05d}" for v in rng.permutation(levels)],
        "order_key": [f"ord-{i:07d}" for i in rng.permutation(n)],
        "session": [f"s{v:09d}" for v in rng.integers(0, 10**9, n - 300)] + ["s000000001"] * 300,
        "review": [" ".join(rng.choice(words, 8)) + f" #{i}" for i in range(n)],
        "amount": rng.gamma(2.0, 30.0, n).round(2),
    })
    frame.loc[rng.choice(n, 40, replace=False), "posted_eu"] = "not a date"
    frame.loc[rng.choice(n, 25, replace=False), "posted_eu"] = None
    return frame


PATCH = 8  # the planted patch: the top-left 8 x 8 pixels of 32 x 32 images


def _pixels(frame: pd.DataFrame) -> np.ndarray:
    """Each image at 8 x 8, RGB, as one row: a plain pixel featurizer."""
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((8, 8)), dtype=float).ravel() / 255
                     for p in frame.iloc[:, 0]])


def write_planted_images(folder, n: int = 40, seed: int = 0) -> pd.DataFrame:
    """Grey noise images; every other one carries a bright red square in its top-left patch."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        pixels = (120 + rng.normal(0, 12, (32, 32, 3))).clip(0, 255).astype(np.uint8)
        if i % 2:
            pixels[:PATCH, :PATCH] = (250, 20, 20)
        path = folder / f"img{i}.png"
        Image.fromarray(pixels).save(path)
        rows.append({"photo": str(path), "size": float(rng.normal())})
    return pd.DataFrame(rows)


def image_model(table: pd.DataFrame) -> tuple[ClusterModel, np.ndarray]:
    featurizer = ColumnTransformer([("image", FunctionTransformer(_pixels), ["photo"])]).fit(table)
    X = featurizer.transform(table)
    clusterer = Clusterer("kmeans", 2, random_state=0).fit(X)
    return ClusterModel.from_fitted(featurizer, "passthrough", clusterer, {"photo": "image", "size": "ignore"}, None), X
