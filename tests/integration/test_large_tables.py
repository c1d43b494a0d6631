"""Partitioned tables through the installed `clusterflow run`: a multi-file Parquet dataset on local disk,
a glob of CSVs on moto's S3 server, and a CSV glob whose files repeat an id across partitions.

Runs train on a seeded sample and assign every row on the session's Dask cluster; the same sample
given to the in-memory path as one file must give the same models and the same labels, for the
sampled rows and for every other row. Tables are tiny; commands use the session's Prefect server.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import s3fs

import clusterflow
from clusterflow.run_folder import FEATURES_SAMPLE, RunFolder
from clusterflow.samples import customers

CLI = str(Path(sys.executable).with_name("clusterflow"))
TRAIN = ["--k", "3", "4", "--algorithms", "kmeans,gmm", "--seed", "5"]
ROWS, FILES, SAMPLE = 600, 3, 300


@pytest.fixture(scope="module")
def run_cli(prefect_server, dask_address, s3_server):
    env = {**prefect_server.client_env, **{k: v for k, v in os.environ.items() if k.startswith("AWS_")},
           "HF_HUB_OFFLINE": "1"}

    def run(*args, dask: bool = True, command: str = "run") -> subprocess.CompletedProcess:
        argv = [CLI, command, *map(str, args), *(["--dask-address", dask_address] if dask else [])]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)

    return run


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return customers(ROWS, seed=3, with_segment=False)


def split(frame: pd.DataFrame) -> list[pd.DataFrame]:
    return [frame.iloc[n * len(frame) // FILES:(n + 1) * len(frame) // FILES] for n in range(FILES)]


def published_assignments(run: str) -> tuple[pd.DataFrame, object]:
    """Every row's assignment from the run's ``assignments/`` files (each verified against the manifest)."""
    folder = RunFolder(run)
    manifest = folder.manifest()
    parts = folder.assignment_parts(manifest)
    assert len(parts) >= FILES
    frame = pd.concat([pd.read_parquet(io.BytesIO(folder.read(p, manifest))) for p in parts], ignore_index=True)
    return frame, manifest


def succeeded(done: subprocess.CompletedProcess) -> bool:
    return done.returncode == 0 and "Traceback (most recent call last)" not in done.stdout + done.stderr


@pytest.fixture(scope="module")
def parquet_run(run_cli, table, tmp_path_factory) -> dict:
    """A Parquet dataset folder run, and the in-memory run of the same sample written as one file."""
    root = tmp_path_factory.mktemp("large-parquet")
    dataset = root / "customers"
    dataset.mkdir()
    for number, part in enumerate(split(table)):
        part.to_parquet(dataset / f"part-{number}.parquet", index=False)
    (dataset / "_SUCCESS").write_text("")  # marker files of writers are not data
    big = run_cli(dataset, "--out", root / "run", "--sample-rows", SAMPLE, *TRAIN)
    assert succeeded(big), big.stdout[-2000:] + big.stderr[-3000:]
    folder = RunFolder(str(root / "run"))
    positions = np.load(io.BytesIO(folder.read(FEATURES_SAMPLE, folder.manifest())))
    table.iloc[positions].to_parquet(root / "sample.parquet", index=False)
    small = run_cli(root / "sample.parquet", "--out", root / "in-memory", *TRAIN, dask=False)
    assert succeeded(small), small.stderr[-3000:]
    return {"run": str(root / "run"), "in_memory": str(root / "in-memory"), "positions": positions,
            "stdout": big.stdout}


def test_parquet_dataset_assigns_every_row_as_the_in_memory_path_does(parquet_run, table):
    assignments, manifest = published_assignments(parquet_run["run"])
    assert assignments["customer_id"].tolist() == table["customer_id"].tolist()  # every row once, in order
    assert manifest.input.rows == ROWS and manifest.sample.model_dump() == {"rows": SAMPLE, "of_rows": ROWS, "seed": 5}
    assert manifest.partition.train_rows + manifest.partition.validation_rows == SAMPLE
    assert len(parquet_run["positions"]) == SAMPLE and len(np.unique(parquet_run["positions"])) == SAMPLE
    board = pd.read_csv(f"{parquet_run['run']}/leaderboard.csv")
    assert board["note"].str.contains(f"trained on a sample of {SAMPLE} of {ROWS} rows").all()
    assert f"sample of {SAMPLE} of {ROWS} rows" in parquet_run["stdout"]

    in_memory = RunFolder(parquet_run["in_memory"])
    columns = ["model_id", "clusters", "silhouette"]
    pd.testing.assert_frame_equal(board[columns], in_memory.leaderboard(in_memory.manifest())[columns])
    sampled = in_memory.assignments(in_memory.manifest())
    by_id = assignments.set_index("customer_id")
    assert (by_id.loc[sampled["customer_id"], "cluster"].to_numpy() == sampled["cluster"].to_numpy()).all()
    everyone = clusterflow.load_model(parquet_run["in_memory"]).predict(table)
    assert (assignments["cluster"].to_numpy() == everyone).all()
    assert (Path(parquet_run["run"]) / "report.html").exists()


def test_csv_glob_on_s3_gives_the_parquet_dataset_runs_labels(run_cli, table, parquet_run, s3_bucket):
    fs = s3fs.S3FileSystem()
    for number, part in enumerate(split(table)):
        with fs.open(f"{s3_bucket}/incoming/customers-{number}.csv", "w") as f:
            part.to_csv(f, index=False)
    run = f"s3://{s3_bucket}/runs/glob"
    # the command's own local cluster: its workers see the S3 server's environment (the session's may not)
    done = run_cli(f"s3://{s3_bucket}/incoming/customers-*.csv", "--out", run, "--sample-rows", SAMPLE, *TRAIN,
                   dask=False)
    assert succeeded(done), done.stderr[-3000:]

    assignments, manifest = published_assignments(run)
    expected, _ = published_assignments(parquet_run["run"])
    assert manifest.input.rows == ROWS
    pd.testing.assert_frame_equal(assignments, expected, check_dtype=False)


def test_an_id_repeated_across_files_is_reported_as_the_in_memory_path_reports_it(run_cli, table, tmp_path):
    broken = table.copy()
    broken.loc[ROWS - 10, "customer_id"] = broken.loc[7, "customer_id"]  # first file's id in the last file
    roles = tmp_path / "roles.json"
    roles.write_text(json.dumps({"customer_id": "id"}))
    folder = tmp_path / "incoming"
    folder.mkdir()
    for number, part in enumerate(split(broken)):
        part.to_csv(folder / f"customers-{number}.csv", index=False)
    broken.to_csv(tmp_path / "whole.csv", index=False)

    with ThreadPoolExecutor(max_workers=2) as pool:  # both are refused while loading: mostly start-up
        by_partition, in_memory = pool.map(lambda args: run_cli(*args), (
            (folder / "*.csv", "--roles", roles, "--sample-rows", 100, *TRAIN),
            (tmp_path / "whole.csv", "--roles", roles, *TRAIN)))
    problem = f"column 'customer_id': id values repeat (rows 7, {ROWS - 10})"
    for done in (by_partition, in_memory):
        assert done.returncode == 2 and "Traceback (most recent call last)" not in done.stdout + done.stderr
        assert problem in done.stderr, done.stderr[-2000:]


def test_predict_on_a_parquet_folder_and_a_csv_glob_equals_predict_on_the_whole_table(run_cli, table, parquet_run,
                                                                                      tmp_path):
    dataset = Path(parquet_run["run"]).parent / "customers"
    for number, part in enumerate(split(table)):
        part.to_csv(tmp_path / f"new-{number}.csv", index=False)
    expected = clusterflow.load_model(parquet_run["run"]).predict(table)
    inputs = ((dataset, tmp_path / "from-folder"), (tmp_path / "new-*.csv", tmp_path / "from-glob"))
    with ThreadPoolExecutor(max_workers=len(inputs)) as pool:  # the two commands start side by side
        finished = list(pool.map(lambda data_out: run_cli(parquet_run["run"], data_out[0], "--out", data_out[1],
                                                          command="predict"), inputs))
    for done, (_, out) in zip(finished, inputs):
        assert succeeded(done), done.stderr[-3000:]
        scored = pd.read_parquet(out)
        assert scored["customer_id"].tolist() == table["customer_id"].tolist()
        assert (scored["cluster"].to_numpy() == expected).all()


@pytest.mark.parametrize("command, args, names", [("rerun", ["--k", "6"], "RUN"), ("recluster", [], "DATA")])
def test_commands_that_need_one_table_file_refuse_a_partitioned_run_or_input(run_cli, parquet_run, command, args,
                                                                             names):
    target = parquet_run["run"] if names == "RUN" else str(Path(parquet_run["run"]).parent / "customers")
    done = run_cli(target, *args, dask=False, command=command)
    assert done.returncode == 2 and "Traceback (most recent call last)" not in done.stdout + done.stderr
    assert f"`clusterflow {command}` " in done.stderr and "partitioned table" in done.stderr, done.stderr[-2000:]
    assert "clusterflow run DATA" in done.stderr  # what to do instead


def test_report_on_a_partitioned_run_draws_the_sample_again_and_rebuilds_the_same_insights(run_cli, parquet_run,
                                                                                           tmp_path):
    run = tmp_path / "run"
    shutil.copytree(parquet_run["run"], run)  # the report commits a new revision; the module's run stays as it is
    manifest = RunFolder(str(run)).manifest()
    before = json.loads((run / manifest.insights / "insights.json").read_text())
    done = run_cli(run, dask=False, command="report")
    assert succeeded(done), done.stderr[-3000:]
    after = RunFolder(str(run)).manifest()
    assert after.revision == manifest.revision + 1
    assert json.loads((run / after.insights / "insights.json").read_text()) == before

