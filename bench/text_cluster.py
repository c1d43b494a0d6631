"""Text embedding on the Dask cluster: texts/s with 1, 2 and 4 worker processes vs in the flow's process.

    .venv/bin/python bench/text_cluster.py                 # 2,000 distinct reviews, default backend
    .venv/bin/python bench/text_cluster.py --texts 4000 --workers 1 2 4 --backend torch

Each setting embeds the same distinct texts with an empty cache: once in this process (the
model on every core), then through a LocalCluster of N single-threaded worker processes
(each loads the model once and runs it on its share of the cores). Model loading and the
cluster's start are excluded; each worker's first chunk includes its model load. On a
machine of C cores the speed-up is bounded by C / (the threads one in-process encode uses
well): here, 2 cores, so more than two workers can only add overhead. With W machines of C
cores each, chunks spread over every worker and the rate scales with W x C, less the
chunks' transfer (a few kB per text).
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def main() -> None:
    import pandas as pd
    from distributed import Client, LocalCluster

    from clusterflow.modalities.text import SentenceEmbedder
    from clusterflow.parameters import RunParameters
    from clusterflow.samples import reviews

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--backend", default=RunParameters().text_backend)
    args = parser.parse_args()

    texts = reviews(args.texts * 2, seed=3)["review"].drop_duplicates().head(args.texts).tolist()
    frame = pd.DataFrame({"review": texts})
    SentenceEmbedder(backend=args.backend).fit(frame.head(5)).transform(frame.head(5))  # export/warm once

    embedder = SentenceEmbedder(backend=args.backend).fit(frame)
    started = time.perf_counter()
    embedder.transform(frame)
    rates = {"in-process": len(texts) / (time.perf_counter() - started)}
    print(f"{len(texts):,} distinct texts, backend {args.backend}, {os.cpu_count()} cores")
    print(f"in-process: {rates['in-process']:.1f} texts/s", flush=True)
    for workers in args.workers:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          host="127.0.0.1") as cluster, Client(cluster):
            embedder = SentenceEmbedder(backend=args.backend, parallel_min_texts=1).fit(frame)
            started = time.perf_counter()
            embedder.transform(frame)
            rates[f"{workers} workers"] = len(texts) / (time.perf_counter() - started)
        print(f"{workers} worker process(es): {rates[f'{workers} workers']:.1f} texts/s, "
              f"{rates[f'{workers} workers'] / rates['in-process']:.2f}x in-process", flush=True)


if __name__ == "__main__":
    main()
