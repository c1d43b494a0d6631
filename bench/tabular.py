"""Tabular benchmark: clusterflow end to end vs a hand-written scikit-learn script.

    .venv/bin/python bench/tabular.py            # 100k rows: k-means + GMM + HDBSCAN, default k list
    .venv/bin/python bench/tabular.py --rows 1000000 --algorithms kmeans,minibatch_kmeans,gmm_diag

Prints wall time and peak memory (the whole process tree: the flow and its Dask
workers) of each, and their ratio. Targets at 100k rows: ratio <= 1.5, peak <= 4 GB.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import numpy as np
import pandas as pd
import psutil

N_NUMERIC, N_CATEGORICAL, N_SEGMENTS = 20, 5, 6


def make_table(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """20 numeric and 5 categorical columns with six planted segments and 1% missing values."""
    rng = np.random.default_rng(seed)
    segment = rng.integers(N_SEGMENTS, size=n_rows)
    centres = rng.normal(scale=3.0, size=(N_SEGMENTS, N_NUMERIC))
    numbers = centres[segment] + rng.normal(size=(n_rows, N_NUMERIC))
    numbers[rng.random(numbers.shape) < 0.01] = np.nan
    frame = pd.DataFrame(numbers, columns=[f"x{i}" for i in range(N_NUMERIC)])
    for j in range(N_CATEGORICAL):
        levels = np.array([f"c{j}_{v}" for v in range(8)])
        favourite = rng.integers(8, size=N_SEGMENTS)
        pick = np.where(rng.random(n_rows) < 0.7, favourite[segment], rng.integers(8, size=n_rows))
        frame[f"cat{j}"] = levels[pick]
    return frame


class PeakMemory:
    """Samples the RSS of this process and all its children every 100 ms."""

    def __enter__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.1)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def hand_written(path: str, algorithms: list[str], k_values: list[int], seed: int = 0) -> int:
    """What a data scientist would write by hand: featurize, then fit and score each candidate."""
    import hdbscan
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
    from sklearn.mixture import GaussianMixture
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, RobustScaler

    frame = pd.read_parquet(path)
    numeric = [c for c in frame if c.startswith("x")]
    categorical = [c for c in frame if c.startswith("cat")]
    order = np.random.default_rng(seed).permutation(len(frame))
    n_val = min(round(0.2 * len(frame)), 50_000)
    train, val = frame.iloc[order[n_val:]], frame.iloc[order[:n_val]]
    featurizer = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), RobustScaler()), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
    ])
    F = featurizer.fit_transform(train)
    pca = PCA(32, random_state=seed).fit(F) if F.shape[1] > 32 else None
    X = pca.transform(F) if pca else F
    V = featurizer.transform(val)
    V = pca.transform(V) if pca else V
    models = {
        "kmeans": lambda k: KMeans(k, n_init=3, random_state=seed),
        "minibatch_kmeans": lambda k: MiniBatchKMeans(k, batch_size=8192, n_init=3, random_state=seed),
        "gmm": lambda k: GaussianMixture(k, init_params="k-means++", reg_covar=1e-4, random_state=seed),
        "gmm_diag": lambda k: GaussianMixture(k, covariance_type="diag", init_params="k-means++", reg_covar=1e-4,
                                              random_state=seed),
    }
    fitted = 0
    for name in algorithms:
        if name == "hdbscan":
            sample = np.random.default_rng(seed).choice(len(X), min(20_000, len(X)), replace=False)
            size = max(10, round(0.02 * len(sample)))
            model = hdbscan.HDBSCAN(min_cluster_size=size, min_samples=10, prediction_data=True).fit(X[sample])
            labels = hdbscan.approximate_predict(model, V)[0]
            runs = [labels]
        else:
            runs = [models[name](k).fit(X).predict(V) for k in k_values]
        for labels in runs:
            keep = labels >= 0
            if len(set(labels[keep])) > 1:
                silhouette_score(V[keep], labels[keep], sample_size=min(10_000, keep.sum()), random_state=seed)
                calinski_harabasz_score(V[keep], labels[keep])
                davies_bouldin_score(V[keep], labels[keep])
            fitted += 1
    return fitted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--algorithms", default="kmeans,gmm,hdbscan")
    args = parser.parse_args()
    algorithms = args.algorithms.split(",")

    from clusterflow.partition import default_k_values

    k_values = default_k_values(args.rows - min(round(0.2 * args.rows), 50_000))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "segments.parquet")
        make_table(args.rows).to_parquet(path)
        print(f"table: {args.rows:,} rows x {N_NUMERIC} numeric + {N_CATEGORICAL} categorical; "
              f"algorithms {algorithms}; k {k_values}")

        with PeakMemory() as memory:
            started = time.perf_counter()
            n = hand_written(path, algorithms, k_values)
            baseline = time.perf_counter() - started
        print(f"hand-written scikit-learn: {baseline:7.1f} s  peak {memory.peak / 2**30:.2f} GB  ({n} candidates)")

        from flows.cluster import cluster

        for attempt in ("first run (starts Prefect and Dask)", "second run (Prefect warm)"):
            with PeakMemory() as memory:
                started = time.perf_counter()
                cluster(data=path, out=os.path.join(tmp, f"run-{time.time_ns()}"), algorithms=algorithms)
                elapsed = time.perf_counter() - started
            print(f"clusterflow, {attempt}: {elapsed:7.1f} s  peak {memory.peak / 2**30:.2f} GB  "
                  f"ratio {elapsed / baseline:.2f}")


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    main()
