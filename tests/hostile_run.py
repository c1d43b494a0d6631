"""A small published run with hostile column names and levels, built without Prefect or Dask.

Shared by the blueprint tests (tests/unit) and the `clusterflow describe` tests (tests/integration).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from clusterflow import runs
from clusterflow.samples import customers
from clusterflow.run_folder import RunFolder
from clusterflow.training import fit_and_score
from schemas.parameters import parse_parameters

HOSTILE_COLUMN = '<script>alert(1)</script>'
HOSTILE_LEVEL = '"><svg onload="alert(1)">'


def hostile_table(n: int = 300) -> pd.DataFrame:
    """Customers plus text, dates, a latitude/longitude pair and a constant; a hostile column name and level."""
    table = customers(n, seed=4).drop(columns="segment").rename(columns={"visits_per_month": HOSTILE_COLUMN})
    table.loc[: n // 5, "plan"] = HOSTILE_LEVEL
    rng = np.random.default_rng(4)
    table["review"] = [" ".join(rng.choice(["fast", "slow", "kind", "rude", "cheap", "dear", "late"], 5))
                       for _ in range(n)]
    table["visited"] = (pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 300, n), "D")).astype(str)
    table["latitude"] = rng.uniform(40, 50, n)
    table["longitude"] = rng.uniform(0, 10, n)
    table["constant"] = "same"
    return table


def publish_hostile_run(folder_path):
    """Publish a run of kmeans, gmm, ward (k=3) and hdbscan on :func:`hostile_table`, PCA to 8 components.

    Returns the run folder, its manifest, the inputs, the prepared features and the fitted clusterers by model id.
    """
    data = folder_path / "hostile.csv"
    hostile_table().to_csv(data, index=False)
    roles = folder_path / "roles.json"
    roles.write_text(json.dumps({"review": "text"}))
    inputs = runs.load_input(str(data), str(roles))
    params = parse_parameters(k=[3], algorithms=["kmeans", "gmm", "ward", "hdbscan"], text_featurizer="tfidf",
                              max_components=8)
    prepared = runs.prepare_features(inputs, params)
    results = [fit_and_score(spec, prepared.X_train, prepared.X_validation, silhouette_sample=1000)
               for spec in prepared.specs]
    folder = RunFolder(str(folder_path / "run"))
    manifest = runs.commit_run(folder, runs.write_run_files(folder, "described", inputs, prepared, results, params))
    return folder, manifest, inputs, prepared, {r.spec.model_id: r.clusterer for r in results}
