"""Featurization on the Dask cluster: a mixed table prepared in the flow's process vs over 1, 2 and 4 workers.

A table with numeric, categorical, text, image and geo columns (``samples.multimodal_customers``,
64x64 PNG photos) is prepared as a run prepares it (``runs.prepare_features``: the featurizer
and reducer fitted on the train rows, the validation rows transformed), each setting in its own
process with an empty embedding cache:

- in-process: no Dask client; the text model runs on every core of this process;
- N workers: a LocalCluster of N single-threaded worker processes; the train rows' texts and
  images are embedded / read on the workers in chunks, and the validation rows go through the
  whole fitted featurizer and reducer there, partition by partition.

Each setting's imports are done before it is timed (the text model is loaded in the timed part,
in-process and on every worker). Prints per setting the wall time, the speed-up over in-process,
the CPU seconds of the flow's process and the workers (steadier than wall time on a shared
machine), the flow process's peak
resident memory (``ru_maxrss`` of that process alone; workers are its children and are not
counted) and whether the matrices equal the in-process ones.

    .venv/bin/python bench/featurize_workers.py                  # 6,000 rows, half of them validation
    .venv/bin/python bench/featurize_workers.py --rows 10000 --workers 1 2 4

This machine has 2 cores: an in-process encoder already uses both, so workers can only win what
the in-process path leaves idle (single-threaded image decoding, the other modalities) and lose
their overhead; 4 worker processes on 2 cores oversubscribe them. The partitioned work is
independent per partition, so on W machines of C cores the partitioned stages run about
W x C / 2 times faster than one worker process with both cores of this machine (less the
transfer of the rows and of the reduced matrix). Figures from a machine shared with other
work are noisy: read the ratios, and rerun on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def prepare_once(inputs_file: str, workers: int, out: str, seed: int) -> None:
    """One setting in this process: prepare the features, save the matrices, print a JSON line of figures."""
    import numpy as np

    from clusterflow import runs
    from clusterflow.parameters import parse_parameters

    with open(inputs_file, "rb") as f:
        inputs = pickle.load(f)
    params = parse_parameters(k=[4], algorithms=["kmeans"], seed=seed, validation_fraction=0.5,
                              cache=tempfile.mkdtemp(prefix="bench-cache-"))
    warm_text_model(inputs)
    figures = {"workers": workers}
    if workers:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(import_text_stack)  # as this process has imported it: the timed part is the work
            workers_cpu = sum(client.run(cpu_seconds).values())
            started, flow_cpu = time.perf_counter(), cpu_seconds()
            prepared = runs.prepare_features(inputs, params, client=client)
            figures["seconds"] = time.perf_counter() - started
            figures["cpu_seconds"] = cpu_seconds() - flow_cpu + sum(client.run(cpu_seconds).values()) - workers_cpu
    else:
        started, flow_cpu = time.perf_counter(), cpu_seconds()
        prepared = runs.prepare_features(inputs, params)
        figures["seconds"] = time.perf_counter() - started
        figures["cpu_seconds"] = cpu_seconds() - flow_cpu
    np.savez(out, train=prepared.X_train, validation=prepared.X_validation)
    text = runs.block_summary(inputs, prepared)["text"]["featurizer"]
    figures.update(peak_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                   train_rows=len(prepared.X_train), validation_rows=len(prepared.X_validation),
                   texts_encoded=text["texts_encoded"], featurized_width=prepared.featurized_width,
                   reduced_width=prepared.X_train.shape[1])
    print("FIGURES " + json.dumps(figures), flush=True)


def cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def import_text_stack() -> None:
    import onnxruntime  # noqa: F401
    import sentence_transformers  # noqa: F401

    import clusterflow.featurize_on_workers  # noqa: F401
    import clusterflow.modalities.text  # noqa: F401


def warm_text_model(inputs) -> None:
    """Export the ONNX model once (cached on disk) so no setting pays the one-time export."""
    from clusterflow.modalities.text import SentenceEmbedder

    column = next(c for c, role in inputs.roles.items() if role == "text")
    SentenceEmbedder().fit(inputs.frame[[column]].head(4)).transform(inputs.frame[[column]].head(4))


def write_table(folder: Path, rows: int, seed: int) -> str:
    """The mixed table's validated inputs, pickled; returns the pickle's path."""
    from clusterflow import runs
    from clusterflow.samples import multimodal_customers

    frame = multimodal_customers(rows, str(folder), seed=seed, with_segment=False)
    inputs = runs.check_input(frame, None, data_uri=str(folder / "customers.csv"), sha256="bench",
                              image_root=str(folder))
    path = folder / "inputs.pkl"
    path.write_bytes(pickle.dumps(inputs))
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", nargs=3, metavar=("INPUTS", "WORKERS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        prepare_once(args.one[0], int(args.one[1]), args.one[2], args.seed)
        return

    import numpy as np

    with tempfile.TemporaryDirectory(prefix="clusterflow-featurize-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        inputs_file = write_table(tmp, args.rows, args.seed)
        print(f"{args.rows:,} rows (numeric, categorical, text, 64x64 PNG image, geo), written in "
              f"{time.perf_counter() - started:.0f} s; {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        results, matrices = {}, {}
        for workers in [0, *args.workers]:
            out = str(tmp / f"matrices-{workers}.npz")
            load = os.getloadavg()[0]
            done = subprocess.run([sys.executable, __file__, "--seed", str(args.seed), "--one", inputs_file,
                                   str(workers), out], capture_output=True, text=True)
            line = next((l for l in done.stdout.splitlines() if l.startswith("FIGURES ")), None)
            if done.returncode != 0 or line is None:
                raise SystemExit(f"setting {workers} failed:\n{done.stderr[-4000:]}")
            figures = results[workers] = json.loads(line.removeprefix("FIGURES "))
            matrices[workers] = np.load(out)
            name = f"{workers} worker process{'es' if workers > 1 else ''}" if workers else "in-process"
            same = ""
            if workers:
                same = "; matrices equal in-process: " + str(
                    np.array_equal(matrices[workers]["train"], matrices[0]["train"])
                    and np.allclose(matrices[workers]["validation"], matrices[0]["validation"], atol=1e-5))
            speed = f", {results[0]['seconds'] / figures['seconds']:.2f}x in-process" if workers else ""
            print(f"{name}: {figures['seconds']:.1f} s{speed}, {figures['cpu_seconds']:.0f} CPU s; flow peak RSS {figures['peak_bytes'] / 2**20:,.0f} MiB; "
                  f"{figures['train_rows']:,} train + {figures['validation_rows']:,} validation rows, "
                  f"{figures['featurized_width']} features -> {figures['reduced_width']}, "
                  f"{figures['texts_encoded']:,} texts embedded{same} (load average at start {load:.1f})",
                  flush=True)


if __name__ == "__main__":
    main()
