"""Text benchmark: clusterflow's text featurizer vs ``SentenceTransformer.encode`` on the same texts.

    .venv/bin/python bench/text.py               # 300 distinct reviews, 6 rounds
    .venv/bin/python bench/text.py --rows 2000 --rounds 3

Each round embeds the same distinct texts directly with ``encode`` and through
:class:`~clusterflow.modalities.text.SentenceEmbedder` (with an empty embedding cache),
taking turns at going first so both see the same machine load; model loading is
excluded from both. Then a second featurizer, with an empty memory but the same cache
folder, transforms the same texts: it should embed none of them. Targets: throughput
ratio (clusterflow / direct) >= 0.9; the second run spends no time embedding. The time
the featurizer spends outside ``encode`` (hashing, cache reads and writes) and the ratio
in CPU time are printed too: unlike wall-clock throughput, they barely move with the
machine's load.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import pandas as pd  # noqa: E402

from clusterflow.modalities.text import SentenceEmbedder, default_device, default_model_path  # noqa: E402
from clusterflow.samples import reviews  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300, help="reviews to generate (duplicates are dropped)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    texts = reviews(args.rows, seed=1)["review"].drop_duplicates().tolist()
    frame = pd.DataFrame({"review": texts})
    started = time.perf_counter()
    direct_model = SentenceTransformer(default_model_path(), device=default_device(),
                                       local_files_only=True)
    print(f"{len(texts):,} distinct texts, device {direct_model.device}, "
          f"model load {time.perf_counter() - started:.1f} s, batch size {args.batch_size}")
    direct_model.encode(texts[:64], batch_size=args.batch_size, show_progress_bar=False)  # warm up

    wall = {"direct": [], "clusterflow": []}
    cpu = {"direct": [], "clusterflow": []}
    overheads = []
    with tempfile.TemporaryDirectory(prefix="clusterflow-bench-text-") as folder:
        for round_ in range(args.rounds):
            cache = os.path.join(folder, f"round-{round_}")
            embedder = SentenceEmbedder(cache=cache, batch_size=args.batch_size).fit(frame)
            calls = {"direct": lambda: direct_model.encode(texts, batch_size=args.batch_size, show_progress_bar=False),
                     "clusterflow": lambda: embedder.transform(frame)}
            for contender in list(calls)[:: 1 if round_ % 2 == 0 else -1]:
                seconds, cpu_seconds = timed(calls[contender])
                wall[contender].append(seconds)
                cpu[contender].append(cpu_seconds)
            overheads.append(wall["clusterflow"][-1] - embedder.encode_seconds_)
            assert embedder.n_texts_encoded_ == len(texts)
            print(f"round {round_ + 1}: direct encode {len(texts) / wall['direct'][-1]:.1f} texts/s, "
                  f"clusterflow {len(texts) / wall['clusterflow'][-1]:.1f} texts/s "
                  f"({overheads[-1] * 1000:.0f} ms outside encode)")

        rerun = SentenceEmbedder(cache=cache, batch_size=args.batch_size).fit(frame)
        rerun_seconds, _ = timed(lambda: rerun.transform(frame))

    rate = {name: len(texts) / statistics.median(seconds) for name, seconds in wall.items()}
    cpu_rate = {name: len(texts) / statistics.median(seconds) for name, seconds in cpu.items()}
    print(f"\ndirect SentenceTransformer.encode: {rate['direct']:.1f} texts/s wall, "
          f"{cpu_rate['direct']:.1f} texts per CPU-second (medians of {args.rounds})")
    print(f"clusterflow text featurizer:      {rate['clusterflow']:.1f} texts/s wall, "
          f"{cpu_rate['clusterflow']:.1f} texts per CPU-second")
    print(f"ratio clusterflow / direct:       {rate['clusterflow'] / rate['direct']:.3f} wall, "
          f"{cpu_rate['clusterflow'] / cpu_rate['direct']:.3f} CPU (target >= 0.9)")
    print(f"featurizer time outside encode:   {statistics.median(overheads) * 1000:.0f} ms per {len(texts):,} texts "
          f"(hashing, cache lookup and write)")
    print(f"second run on the same texts:     {rerun_seconds:.3f} s, {rerun.n_texts_encoded_} texts embedded, "
          f"{rerun.encode_seconds_:.3f} s embedding, {rerun.n_cache_hits_:,} cache hits (target: 0 embedded)")


def timed(call) -> tuple[float, float]:
    """Wall and CPU seconds (every thread of this process) spent in ``call()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu

if __name__ == "__main__":
    main()
