"""Multimodal benchmark: numbers, labels, reviews, 128x128 PNG photos and locations, end to end.

    .venv/bin/python bench/multimodal.py               # 20k rows
    .venv/bin/python bench/multimodal.py --rows 5000 --algorithms kmeans

Prints, for one table with every modality:
- images per second of the image featurizer on 128x128 PNGs, in a local loop and
  mapped over a Dask cluster of one worker per core (target >= 300/s);
- the wall time of each featurizer, fitted on the train rows and applied to the
  validation rows, as the flow does;
- the `cluster` flow end to end with its stages (validate, featurize, train, score,
  publish) from the run's manifest and leaderboard, and the peak memory of the
  process tree (the flow and its Dask workers);
- the flow against its own featurization plus a hand-written scikit-learn fit and
  silhouette of the same candidates (target: within 1.5x).

Text embeddings are cached by content, so each side embeds into its own new cache.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tabular import PeakMemory  # noqa: E402  (the process-tree memory sampler of the tabular benchmark)


def images_per_second(frame: pd.DataFrame, n_local: int) -> tuple[float, float]:
    """Images/s of the image featurizer: a local loop on ``n_local`` images, then Dask on all of them."""
    from clusterflow.compute import dask_client
    from clusterflow.modalities.image import ImageFeaturizer

    photos = frame[["photo"]]
    started = time.perf_counter()
    ImageFeaturizer().fit(photos.head(n_local))
    local = n_local / (time.perf_counter() - started)
    with dask_client() as client:
        client.run(lambda: __import__("clusterflow.modalities.image"))  # workers import before the clock starts
        started = time.perf_counter()
        ImageFeaturizer(parallel_min_images=1).fit(photos)
        distributed = len(photos) / (time.perf_counter() - started)
    return local, distributed


def hand_written(inputs, params, k_values: list[int], algorithms: list[str]) -> tuple[dict[str, float], float]:
    """The flow's featurizers timed one by one, then scikit-learn fits and silhouettes written by hand."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score
    from sklearn.mixture import GaussianMixture

    from clusterflow.blueprint import make_featurizer
    from clusterflow.partition import partition_rows
    from clusterflow.runs import featurize_options

    partition = partition_rows(len(inputs.frame), params.validation_fraction, params.max_validation_rows, params.seed)
    train, validation = inputs.frame.iloc[partition.train], inputs.frame.iloc[partition.validation]
    featurizer = make_featurizer(inputs.decisions, None, featurize_options(params))
    seconds, train_blocks, validation_blocks = {}, [], []
    for name, block, columns in featurizer.transformers:
        started = time.perf_counter()
        train_blocks.append(block.fit_transform(train[columns]))
        validation_blocks.append(block.transform(validation[columns]))
        seconds[name] = time.perf_counter() - started
    started = time.perf_counter()
    F, V = np.hstack(train_blocks), np.hstack(validation_blocks)
    pca = PCA(params.max_components, random_state=params.seed).fit(F)
    X, V = pca.transform(F), pca.transform(V)
    models = {"kmeans": lambda k: KMeans(k, n_init=3, random_state=params.seed),
              "gmm": lambda k: GaussianMixture(k, init_params="k-means++", reg_covar=1e-4, random_state=params.seed)}
    for name in algorithms:
        for k in k_values:
            labels = models[name](k).fit(X).predict(V)
            silhouette_score(V, labels, sample_size=min(params.silhouette_sample, len(V)), random_state=params.seed)
    return seconds, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--algorithms", default="kmeans,gmm", help="of kmeans, gmm (the hand-written side's)")
    args = parser.parse_args()
    algorithms = args.algorithms.split(",")

    from clusterflow import runs
    from clusterflow.samples import multimodal_customers
    from flows.cluster import cluster
    from schemas.parameters import parse_parameters

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        table = multimodal_customers(args.rows, tmp, image_size=128, with_segment=False)
        data = os.path.join(tmp, "customers.parquet")
        table.to_parquet(data)
        print(f"table: {args.rows:,} rows; numeric, categorical, text (review), image (128x128 PNG photo), "
              f"geo (latitude + longitude); generated in {time.perf_counter() - started:.0f} s")
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
              "(other processes slow every figure below)")

        inputs = runs.load_input(data)
        local, distributed = images_per_second(inputs.frame, n_local=min(4000, args.rows))
        print(f"image featurizer: {local:6.0f} images/s in a local loop, {distributed:6.0f} images/s on Dask "
              f"({os.cpu_count()} workers)")

        params = parse_parameters(algorithms=algorithms, cache=os.path.join(tmp, "cache-hand"))
        from clusterflow.partition import default_k_values, partition_rows

        n_train = len(partition_rows(args.rows, params.validation_fraction, params.max_validation_rows, 0).train)
        k_values = default_k_values(n_train)
        started = time.perf_counter()
        with PeakMemory() as memory:
            featurize_seconds, fit_seconds = hand_written(inputs, params, k_values, algorithms)
        baseline = time.perf_counter() - started
        print(f"\nfeaturization + hand-written fits ({len(algorithms) * len(k_values)} candidates, k {k_values}): "
              f"{baseline:.1f} s, peak {memory.peak / 2**30:.2f} GB")
        for name, seconds in featurize_seconds.items():
            print(f"  featurize {name:<12} {seconds:7.1f} s")
        print(f"  PCA + fits + silhouettes {fit_seconds:5.1f} s")

        with PeakMemory() as memory:
            started = time.perf_counter()
            run_uri = cluster(data=data, out=os.path.join(tmp, "run"), algorithms=algorithms,
                              cache=os.path.join(tmp, "cache-flow"))
            elapsed = time.perf_counter() - started
        from clusterflow.run_folder import RunFolder

        manifest = RunFolder(run_uri).manifest()
        board = pd.read_csv(f"{run_uri}/leaderboard.csv")
        timings = manifest.timings_seconds
        fit = float(board["fit_seconds"].sum())
        print(f"\nclusterflow end to end (first flow run, starts Prefect and Dask): {elapsed:.1f} s, "
              f"peak {memory.peak / 2**30:.2f} GB, ratio to hand-written {elapsed / baseline:.2f}")
        print(f"  validate (load + roles + checks, {args.rows:,} images opened) {timings['load_and_validate']:7.1f} s")
        print(f"  featurize (all modalities, + PCA)  {timings['featurize']:7.1f} s")
        print(f"  train ({len(board)} candidates, summed)     {fit:7.1f} s")
        print(f"  score (summed)                      {timings['train_and_score'] - fit:7.1f} s")
        print(f"  publish (models, assignments)       {timings['write']:7.1f} s")
        if "insights_and_report" in timings:
            print(f"  insights and report                 {timings['insights_and_report']:7.1f} s")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    main()
