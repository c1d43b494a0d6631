"""Text benchmark: clusterflow's text featurizer, per backend, vs ``SentenceTransformer.encode``.

    .venv/bin/python bench/text.py               # 300 distinct reviews, 6 rounds
    .venv/bin/python bench/text.py --rows 2000 --rounds 3

Each round embeds the same distinct texts directly with torch's ``encode`` and through
:class:`~clusterflow.modalities.text.SentenceEmbedder` with each backend (torch, onnx,
onnx-int8; an empty embedding cache each), in a rotating order so all see the same machine
load; model loading and the one-off ONNX export are excluded. Then a second featurizer, with
an empty memory but the same cache folder, transforms the same texts: it should embed none.
Targets: the torch featurizer's throughput >= 0.9x direct ``encode``; the default backend's
>= 2x; the second run spends no time embedding. CPU-time ratios are printed too: unlike
wall-clock throughput, they barely move with the machine's load. Each backend's smallest
cosine similarity to torch's embedding of the same text says how far it strays.
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
from clusterflow.parameters import TEXT_BACKENDS, RunParameters  # noqa: E402
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

    backends = list(TEXT_BACKENDS)
    contenders = ["direct", *backends]
    wall, cpu = {name: [] for name in contenders}, {name: [] for name in contenders}
    overheads, closeness = [], {}
    with tempfile.TemporaryDirectory(prefix="clusterflow-bench-text-") as folder:
        for round_ in range(args.rounds):
            embedders = {b: SentenceEmbedder(cache=os.path.join(folder, f"round-{round_}-{b}"), backend=b,
                                             batch_size=args.batch_size).fit(frame) for b in backends}
            calls = {"direct": lambda: direct_model.encode(texts, batch_size=args.batch_size, show_progress_bar=False),
                     **{b: (lambda e=e: e.transform(frame)) for b, e in embedders.items()}}
            shift = round_ % len(contenders)
            results = {}
            for contender in contenders[shift:] + contenders[:shift]:
                seconds, cpu_seconds, results[contender] = timed(calls[contender])
                wall[contender].append(seconds)
                cpu[contender].append(cpu_seconds)
            torch_featurizer = embedders["torch"]
            overheads.append(wall["torch"][-1] - torch_featurizer.encode_seconds_)
            for b in backends:
                assert embedders[b].n_texts_encoded_ == len(texts)
                closeness[b] = float((results[b][:, :-1] * results["torch"][:, :-1]).sum(axis=1).min())
            print(f"round {round_ + 1}: " + ", ".join(f"{name} {len(texts) / wall[name][-1]:.1f}" for name in contenders)
                  + " texts/s")

        default = RunParameters().text_backend
        rerun = SentenceEmbedder(cache=os.path.join(folder, f"round-{args.rounds - 1}-{default}"), backend=default,
                                 batch_size=args.batch_size).fit(frame)
        rerun_seconds, _, _ = timed(lambda: rerun.transform(frame))

    rate = {name: len(texts) / statistics.median(seconds) for name, seconds in wall.items()}
    cpu_rate = {name: len(texts) / statistics.median(seconds) for name, seconds in cpu.items()}
    print(f"\n{'':<28}{'texts/s':>9}{'per CPU-s':>11}{'x direct':>10}{'x direct CPU':>14}{'min cosine':>12}")
    for name in contenders:
        label = "direct torch encode" if name == "direct" else f"clusterflow, {name}" + (" (default)" if name == default
                                                                                        else "")
        print(f"{label:<28}{rate[name]:>9.1f}{cpu_rate[name]:>11.1f}{rate[name] / rate['direct']:>10.2f}"
              f"{cpu_rate[name] / cpu_rate['direct']:>14.2f}{closeness.get(name, 1.0):>12.4f}")
    print(f"targets: torch featurizer >= 0.9x direct ({rate['torch'] / rate['direct']:.2f}); default ({default}) "
          f">= 2x direct ({rate[default] / rate['direct']:.2f})")
    print(f"featurizer time outside encode (torch): {statistics.median(overheads) * 1000:.0f} ms per "
          f"{len(texts):,} texts (hashing, cache lookup and write)")
    print(f"second run on the same texts: {rerun_seconds:.3f} s, {rerun.n_texts_encoded_} texts embedded, "
          f"{rerun.encode_seconds_:.3f} s embedding, {rerun.n_cache_hits_:,} cache hits (target: 0 embedded)")


def timed(call) -> tuple[float, float, object]:
    """Wall and CPU seconds (every thread of this process) spent in ``call()``, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return time.perf_counter() - wall, time.process_time() - cpu, result


if __name__ == "__main__":
    main()
