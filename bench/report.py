"""Report benchmark: insights + report of the top model for a 100k-row mixed table.

    .venv/bin/python bench/report.py             # 100k rows
    .venv/bin/python bench/report.py --rows 20000

Builds a run without Prefect (load, featurize, one k-means candidate, write), then
times the insights-and-report step and samples its peak memory (this process).
Prints the report's size and the time headless Chromium takes to load it with the
network refused. Targets at 100k rows: report under 15 MB, load under 3 s.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import pandas as pd

from tabular import PeakMemory

WORDS = [["delivery", "fast", "app", "discount", "coupon"], ["parking", "kids", "weekend", "aisle", "trolley"],
         ["concierge", "lounge", "wine", "tailor", "premium"], ["pension", "pharmacy", "quiet", "garden", "bus"],
         ["laptop", "cable", "monitor", "repair", "warranty"], ["tent", "trail", "boots", "map", "lake"]]


def make_table(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """8 numeric, 3 categorical, a short-text column, latitude/longitude and a date, six planted segments."""
    rng = np.random.default_rng(seed)
    segment = rng.integers(len(WORDS), size=n_rows)
    centres = rng.normal(scale=3.0, size=(len(WORDS), 8))
    frame = pd.DataFrame(centres[segment] + rng.normal(size=(n_rows, 8)), columns=[f"x{i}" for i in range(8)])
    for j in range(3):
        favourite = rng.integers(6, size=len(WORDS))
        pick = np.where(rng.random(n_rows) < 0.7, favourite[segment], rng.integers(6, size=n_rows))
        frame[f"cat{j}"] = np.array([f"level{j}_{v}" for v in range(6)])[pick]
    vocabulary = np.array(WORDS)
    frame["note"] = [" ".join(vocabulary[s, rng.integers(5, size=5)]) for s in segment]
    frame["latitude"] = 40 + segment * 2 + rng.normal(0, 0.5, n_rows)
    frame["longitude"] = -3 + segment * 3 + rng.normal(0, 0.5, n_rows)
    frame["visited"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(segment * 30 + rng.integers(0, 20, n_rows), "D")
    return frame


def load_seconds(path: str) -> float:
    """Seconds from navigation to the load event in headless Chromium, with the network refused."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                                   "--disable-background-networking"])
        page = browser.new_page()
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                   else route.abort())
        started = time.perf_counter()
        page.goto("file://" + os.path.abspath(path), wait_until="load")
        seconds = time.perf_counter() - started
        browser.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    from clusterflow import runs
    from clusterflow.report import add_report
    from clusterflow.run_folder import RunFolder
    from clusterflow.training import fit_and_score
    from schemas.parameters import parse_parameters

    with tempfile.TemporaryDirectory(prefix="clusterflow-bench-") as workdir:
        data = os.path.join(workdir, "mixed.parquet")
        make_table(args.rows).to_parquet(data)
        roles = os.path.join(workdir, "roles.json")
        with open(roles, "w") as f:
            json.dump({"note": "text"}, f)
        inputs = runs.load_input(data, roles)
        params = parse_parameters(k=[6], algorithms=["kmeans"], text_featurizer="tfidf")
        prepared = runs.prepare_features(inputs, params)
        result = fit_and_score(prepared.specs[0], prepared.X_train, prepared.X_validation,
                               silhouette_sample=params.silhouette_sample)
        folder = RunFolder(os.path.join(workdir, "run"))
        manifest = runs.write_run_files(folder, "bench", inputs, prepared, [result], params)
        with PeakMemory() as memory:
            started = time.perf_counter()
            manifest = add_report(folder, inputs.frame, manifest)
            seconds = time.perf_counter() - started
        runs.commit_run(folder, manifest)
        report = os.path.join(folder.uri, manifest.report)
        size = os.path.getsize(report)
        print(f"rows: {args.rows:,}; roles: {', '.join(f'{d.column}={d.role}' for d in inputs.decisions)}")
        print(f"insights + report: {seconds:.1f} s, peak memory {memory.peak / 2**20:,.0f} MB (whole process)")
        print(f"report.html: {size / 2**20:.2f} MB (target < 15 MB)")
        print(f"Chromium load: {load_seconds(report):.2f} s (target < 3 s)")


if __name__ == "__main__":
    main()
