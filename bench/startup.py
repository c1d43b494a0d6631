"""A user's first minute: how long the installed command takes to answer, refuse and cluster a small table.

Wall time (median of --repeats runs, default 5) of
  (a) `clusterflow --help`
  (b) `clusterflow run` refusing an empty file
  (c) `clusterflow run` on a 300-row numeric + categorical table with `--k 3`
  (d) the same with `--mode quick`
with the breakdown (c)'s manifests record (medians), beside a hand-written scikit-learn script that
makes the same fits and scores (the same algorithms and k, silhouette / Calinski-Harabasz /
Davies-Bouldin on a 20% validation split). Prefect runs in its default mode (no
PREFECT_API_URL: its temporary server), in a home of its own that the first, unmeasured run
initialises. Targets on 2 cores: (a) <= 1.5 s, (b) <= 4 s, (c) <= 12 s and <= 4x the script.

    python bench/startup.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLUSTERFLOW = str(Path(sys.executable).with_name("clusterflow"))
ROWS = 300

HAND_WRITTEN = '''
import sys, time
import numpy as np, pandas as pd
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.compose import ColumnTransformer
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder, RobustScaler
import hdbscan

table = pd.read_csv(sys.argv[1])
quick = sys.argv[2] == "quick"
numeric = [c for c in table.columns if table[c].dtype.kind == "f"]
categorical = [c for c in table.columns if c not in numeric]
features = ColumnTransformer([("numeric", make_pipeline(SimpleImputer(strategy="median"), RobustScaler()), numeric),
                              ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)])
train, validation = train_test_split(table, test_size=0.2, random_state=0)
X_train = features.fit_transform(train)
X_validation = features.transform(validation)
models = {"kmeans-k3": KMeans(3, random_state=0, n_init="auto"), "hdbscan": hdbscan.HDBSCAN(prediction_data=True)}
if not quick:
    models.update({"gmm-k3": GaussianMixture(3, random_state=0), "ward-k3": AgglomerativeClustering(3)})
for name, model in models.items():
    model.fit(X_train)
    if name == "hdbscan":
        labels = hdbscan.approximate_predict(model, X_validation)[0]
    elif name == "ward-k3":
        from sklearn.neighbors import KNeighborsClassifier
        labels = KNeighborsClassifier(5).fit(X_train, model.labels_).predict(X_validation)
    else:
        labels = model.predict(X_validation)
    if len(set(labels)) > 1:
        silhouette_score(X_validation, labels), calinski_harabasz_score(X_validation, labels)
        davies_bouldin_score(X_validation, labels)
'''


def small_table(path: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4, size=(3, 2))
    segment = rng.integers(0, 3, ROWS)
    pd.DataFrame({"spend": (centres[segment, 0] + rng.normal(size=ROWS)).round(2),
                  "visits": (centres[segment, 1] + rng.normal(size=ROWS)).round(2),
                  "plan": np.array(["basic", "plus", "pro"])[(segment + rng.integers(0, 2, ROWS)) % 3]}).to_csv(
        path, index=False)


def timed(command: list[str], env: dict, expect: int = 0) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="clusterflow-startup-"))
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    table, empty, script = work / "small.csv", work / "empty.csv", work / "hand_written.py"
    small_table(table)
    empty.write_text("")
    script.write_text(HAND_WRITTEN)

    runs = iter(range(10_000))
    run = lambda *extra: [CLUSTERFLOW, "run", str(table), "--k", "3", "--out", str(work / f"run-{next(runs)}"), *extra]
    timed(run(), env)  # initialises the Prefect home (database migrations): a one-off cost, not measured

    cases = {"(a) clusterflow --help": lambda: timed([CLUSTERFLOW, "--help"], env),
             "(b) refused empty file": lambda: timed([CLUSTERFLOW, "run", str(empty)], env, expect=2),
             "(c) 300 rows, --k 3": lambda: timed(run(), env),
             "(d) 300 rows, --k 3 --mode quick": lambda: timed(run("--mode", "quick"), env),
             "scikit-learn script, same fits": lambda: timed([sys.executable, str(script), str(table), "full"], env),
             "scikit-learn script, quick fits": lambda: timed([sys.executable, str(script), str(table), "quick"], env)}
    medians = {}
    for name, case in cases.items():
        seconds = [case() for _ in range(args.repeats)]
        medians[name] = statistics.median(seconds)
        print(f"{name:36s} median {medians[name]:6.2f} s  (runs: {', '.join(f'{s:.2f}' for s in seconds)})",
              flush=True)

    breakdown: dict[str, list[float]] = {}
    for manifest in sorted(work.glob("run-*/manifest.json"))[1:1 + args.repeats]:  # the (c) runs
        for stage, seconds in json.loads(manifest.read_text())["timings_seconds"].items():
            breakdown.setdefault(stage, []).append(seconds)
    print("\nBreakdown of (c) from its manifests (median seconds; the command's stages overlap where noted):")
    for stage, values in breakdown.items():
        print(f"  {stage:28s} {statistics.median(values):6.2f}")

    c, script_c = medians["(c) 300 rows, --k 3"], medians["scikit-learn script, same fits"]
    print(f"\n(c) / script: {c / script_c:.1f}x (target <= 4x); (d) / quick script: "
          f"{medians['(d) 300 rows, --k 3 --mode quick'] / medians['scikit-learn script, quick fits']:.1f}x")
    for name, target in (("(a) clusterflow --help", 1.5), ("(b) refused empty file", 4.0), ("(c) 300 rows, --k 3", 12.0)):
        print(f"{name}: {medians[name]:.2f} s, target <= {target} s: {'met' if medians[name] <= target else 'NOT met'}")


if __name__ == "__main__":
    main()
