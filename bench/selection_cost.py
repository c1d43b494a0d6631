"""What the model-selection scores cost: a run with them vs the same run scored on the validation rows only.

    .venv/bin/python bench/selection_cost.py             # bench/tabular.py's 100k-row table, kmeans + gmm + hdbscan
    .venv/bin/python bench/selection_cost.py --rows 20000

The default rule (``--metric auto``) scores every candidate beyond its validation silhouette:
the pooled silhouette, the structureless reference, two refits on resamples (stability), the
BIC of mixtures, and the agreement between every pair of models. This script fits the
in-process estimator (``clusterflow.Clustering``, candidates on threads) twice on the same
table: as shipped, and with those scores switched off, and prints both wall times and their
ratio. Target: <= 1.5x. A CLI run also writes insights and reports, which this leaves out, so
the ratio of a whole run is lower than the one printed here.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def tabular_table(rows: int):
    """bench/tabular.py's table: 20 numeric and 5 categorical columns, six planted segments."""
    spec = importlib.util.spec_from_file_location("tabular", Path(__file__).with_name("tabular.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_table(rows)


@contextmanager
def validation_scores_only():
    """Candidates scored as before the selection scores: validation silhouette, CH, DB, sizes."""
    from clusterflow import leaderboard, training

    saved = (training.scoring_rows, training.silhouette_excess, training.resample_stability, training.mixture_bic,
             leaderboard.mean_agreement)
    training.scoring_rows = lambda X_train, X_validation, *args: (X_validation, -1 - np.arange(len(X_validation)))
    training.silhouette_excess = lambda *args, **kwargs: (np.nan, np.nan)
    training.resample_stability = lambda *args, **kwargs: np.nan
    training.mixture_bic = lambda *args, **kwargs: np.nan
    leaderboard.mean_agreement = lambda labels: {}
    try:
        yield
    finally:
        (training.scoring_rows, training.silhouette_excess, training.resample_stability, training.mixture_bic,
         leaderboard.mean_agreement) = saved


def timed_fit(frame, algorithms: list[str], n_jobs: int) -> tuple[float, object]:
    from clusterflow import Clustering

    started = time.perf_counter()
    clustering = Clustering(algorithms=algorithms, n_jobs=n_jobs, seed=0).fit(frame)
    return time.perf_counter() - started, clustering


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--algorithms", default="kmeans,gmm,hdbscan")
    parser.add_argument("--n-jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    frame = tabular_table(args.rows)
    algorithms = args.algorithms.split(",")
    timed_fit(frame.head(2_000), algorithms, args.n_jobs)  # imports and first-call costs, in neither figure
    with validation_scores_only():
        plain_seconds, _ = timed_fit(frame, algorithms, args.n_jobs)
    full_seconds, clustering = timed_fit(frame, algorithms, args.n_jobs)
    board = clustering.leaderboard_
    print(f"rows {args.rows:,} | {len(board)} candidates ({args.algorithms}) | {args.n_jobs} threads | "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"validation scores only: {plain_seconds:.1f} s | with the selection scores: {full_seconds:.1f} s | "
          f"ratio {full_seconds / plain_seconds:.2f} (target <= 1.5)")
    print(f"top model {clustering.best_model_id_}; scoring seconds summed over candidates "
          f"{board['score_seconds'].sum():.1f}, fitting {board['fit_seconds'].sum():.1f}")


if __name__ == "__main__":
    main()
