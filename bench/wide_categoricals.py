"""Wide categoricals: clusterflow's bounded featurization beside a plain one-hot ColumnTransformer.

200,000 rows, 10 label columns of 10 to 50,000 levels (skewed, as real labels are) and
an ISO timestamp. Each approach runs in a fresh process so its peak memory is its own:
featurized width, seconds to fit and transform, peak RSS (and its rise over the
process's RSS once the table is built).

The plain one-hot treats the timestamp as labels, as a low-code tool does; its output
is sparse (a dense one would not fit in memory: its size is printed instead).

    python bench/wide_categoricals.py [--rows 200000]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import psutil

LEVELS = (10, 30, 100, 300, 1_000, 3_000, 10_000, 20_000, 30_000, 50_000)


def wide_table(n_rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {}
    for i, levels in enumerate(LEVELS):
        draws = np.minimum(rng.pareto(0.8, n_rows).astype(np.int64), levels - 1)  # skewed: a long tail of rare levels
        draws[:levels] = np.arange(min(levels, n_rows))  # every level appears
        columns[f"label_{levels}"] = [f"L{i}-{v}" for v in rng.permutation(draws)]
    stamps = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 365 * 86_400, n_rows), unit="s")
    columns["created"] = stamps.strftime("%Y-%m-%dT%H:%M:%SZ")
    return pd.DataFrame(columns)


def clusterflow_featurize(frame: pd.DataFrame) -> dict:
    from clusterflow.blueprint import make_featurizer
    from clusterflow.roles import infer_roles

    started = time.perf_counter()
    decisions = infer_roles(frame)
    inferred = time.perf_counter() - started
    started = time.perf_counter()
    features = make_featurizer(decisions).fit_transform(frame)
    return {"width": features.shape[1], "seconds": time.perf_counter() - started, "infer_seconds": inferred,
            "roles": sorted({d.role for d in decisions}), "dense_gb": features.nbytes / 2**30}


def plain_one_hot(frame: pd.DataFrame) -> dict:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    started = time.perf_counter()
    encoder = ColumnTransformer([("one_hot", OneHotEncoder(handle_unknown="ignore"), list(frame.columns))])
    features = encoder.fit_transform(frame)
    return {"width": features.shape[1], "seconds": time.perf_counter() - started,
            "dense_gb": features.shape[0] * features.shape[1] * 8 / 2**30}


APPROACHES = {"clusterflow": clusterflow_featurize, "plain one-hot": plain_one_hot}


def run_one(name: str, n_rows: int) -> None:
    frame = wide_table(n_rows)
    before = psutil.Process().memory_info().rss
    result = APPROACHES[name](frame)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({**result, "peak_mb": peak / 2**20, "rise_mb": (peak - before) / 2**20}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--one", choices=APPROACHES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one, args.rows)
        return
    frame = wide_table(args.rows)
    print(f"{args.rows:,} rows; distinct levels per label column: "
          f"{', '.join(f'{frame[c].nunique():,}' for c in frame.columns[:-1])}; "
          f"timestamp: {frame['created'].nunique():,} distinct")
    print(f"{'approach':<14} {'width':>9} {'seconds':>8} {'peak MB':>8} {'rise MB':>8} {'dense GB':>9}")
    for name in APPROACHES:
        out = subprocess.run([sys.executable, __file__, "--one", name, "--rows", str(args.rows)],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{name:<14} {r['width']:>9,} {r['seconds']:>8.1f} {r['peak_mb']:>8.0f} {r['rise_mb']:>8.0f} "
              f"{r['dense_gb']:>9.2f}")
        if "roles" in r:
            print(f"{'':<14} roles inferred in {r['infer_seconds']:.1f} s: {', '.join(r['roles'])}")


if __name__ == "__main__":
    main()
