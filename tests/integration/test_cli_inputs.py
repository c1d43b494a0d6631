"""What a user sees from the installed `clusterflow` command, on the inputs and mistakes users make.

Each case runs the command in a subprocess and checks the exit code, that the message names
the cause, and that no traceback reaches the terminal. Every case here is refused (or read,
through `inspect`) before Prefect or Dask start, so each takes seconds.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

CLUSTERFLOW = os.path.join(os.path.dirname(sys.executable), "clusterflow")
TRACEBACK = "Traceback (most recent call last)"
ROWS = 40
PARALLEL_COMMANDS = 2


def clusterflow(*args: str, cwd: Path | None = None, timeout: float = 600,
                env: dict | None = None) -> subprocess.CompletedProcess:
    return no_traceback(subprocess.run([CLUSTERFLOW, *args], capture_output=True, text=True, timeout=timeout,
                                       cwd=cwd, env={**os.environ, **(env or {})}))


def no_traceback(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert TRACEBACK not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def refusal(done: subprocess.CompletedProcess) -> str:
    """The command's error report; asserts it exited 2 (a user's mistake)."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error:") or "Error:" in done.stderr, done.stderr
    return done.stderr


def refused(name: str, commands: dict) -> str:
    """The error report of one of the module's up-front ``commands`` (see the fixture)."""
    return refusal(no_traceback(commands[name]))


def numbers_table(n: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=n).round(3), "y": rng.normal(size=n).round(3),
                         "kind": rng.choice(["a", "b", "c"], n)})


# Inputs that are read correctly: through `inspect` (reads the table and decides roles, no training).

def _write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _rows(n: int = ROWS):
    rng = np.random.default_rng(1)
    return [(round(float(a), 2), round(float(b), 2), str(rng.choice(["nord", "süd", "ouest"]))) for a, b in
            zip(rng.normal(size=n), rng.normal(size=n))]


def latin1_csv(tmp_path):
    text = "größe,preis,région\n" + "".join(f"{a},{b},{c}\n" for a, b, c in _rows())
    return _write_text(tmp_path / "latin1.csv", text, "latin-1"), ["größe", "région", "categorical"]


def cp1252_csv(tmp_path):
    text = "amount,price (€),label\n" + "".join(f"{a},{b},€{c}\n" for a, b, c in _rows())
    return _write_text(tmp_path / "cp1252.csv", text, "cp1252"), ["price (€)", "categorical"]


def semicolon_decimal_comma_csv(tmp_path):
    text = "höhe;gewicht;art\n" + "".join(f"{str(a).replace('.', ',')};{str(b).replace('.', ',')};{c}\n"
                                         for a, b, c in _rows())
    return _write_text(tmp_path / "european.csv", text), ["höhe  ", "numeric", "gewicht"]


def bom_csv(tmp_path):
    text = "\ufeffx,y,kind\n" + "".join(f"{a},{b},{c}\n" for a, b, c in _rows())
    return _write_text(tmp_path / "bom.csv", text), ["\nx ", "numeric"]


def embedded_newlines_csv(tmp_path):
    text = "x,note,kind\n" + "".join(f'{a},"line one\nline two, with a comma",{c}\n' for a, _, c in _rows())
    return _write_text(tmp_path / "newlines.csv", text), [f"{ROWS} rows, 3 columns"]


def json_array(tmp_path):
    path = tmp_path / "records.json"
    path.write_text(json.dumps([{"x": a, "y": b, "kind": c} for a, b, c in _rows()]))
    return path, [f"{ROWS} rows, 3 columns"]


def odd_column_names_csv(tmp_path):
    table = numbers_table().set_axis(["1", "größe (cm)", "../../etc/passwd"], axis=1)
    table["total spend"] = np.arange(ROWS) * 1.5 % 7
    path = tmp_path / "odd names.csv"
    table.to_csv(path, index=False)
    return path, ["1 ", "größe (cm)", "../../etc/passwd", "total spend"]


def nested_parquet(tmp_path):
    table = numbers_table()
    table["tags"] = [[f"t{i % 3}", "x"] for i in range(ROWS)]
    table["address"] = [{"city": f"c{i % 4}", "zip": i} for i in range(ROWS)]
    path = tmp_path / "nested.parquet"
    table.to_parquet(path)
    return path, ["tags", "address", "nested"]


def excel_sheet(tmp_path):
    path = tmp_path / "sheet.xlsx"
    numbers_table().to_excel(path, index=False)
    return path, [f"{ROWS} rows, 3 columns", "numeric", "categorical"]


def wide_table_csv(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "wide.csv"
    pd.DataFrame(rng.normal(size=(100, 5_000)).round(2), columns=[f"c{i}" for i in range(5_000)]).to_csv(path,
                                                                                                       index=False)
    return path, ["100 rows, 5000 columns"]


def megabyte_text_cell_csv(tmp_path):
    table = numbers_table()
    table["note"] = [" ".join(["word"] * 5) + f" {i}" for i in range(ROWS)]
    table.loc[3, "note"] = "lorem ipsum " * 90_000  # ~1 MB
    path = tmp_path / "long_text.csv"
    table.to_csv(path, index=False)
    return path, ["note", "text"]


READ_INPUTS = {make.__name__: make for make in (latin1_csv, cp1252_csv, semicolon_decimal_comma_csv, bom_csv,
                                                 embedded_newlines_csv, json_array, odd_column_names_csv,
                                                 nested_parquet, excel_sheet, wide_table_csv, megabyte_text_cell_csv)}


@pytest.mark.parametrize("case", sorted(READ_INPUTS))
def test_input_is_read(outcomes, case):
    done, expected = outcomes[("read", case)]
    assert done.returncode == 0, done.stdout + done.stderr
    for text in expected:
        assert text in done.stdout, done.stdout


# Inputs that are refused, with what and where.

def _csv(tmp_path, name: str, text: str) -> Path:
    return _write_text(tmp_path / name, text)


def _table_with(tmp_path, name: str, **columns) -> Path:
    table = numbers_table()
    for column, values in columns.items():
        table[column] = values
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path


REFUSED_INPUTS = {
    "empty file": (lambda p: _csv(p, "empty.csv", ""), ["DATA", "empty"]),
    "header only": (lambda p: _csv(p, "header.csv", "x,y,kind\n"), ["no rows"]),
    "too few rows": (lambda p: _csv(p, "few.csv", "x,y\n1,2\n3,4\n"), ["fewer than 10 rows"]),
    "duplicate column names": (lambda p: _csv(p, "dup.csv", "x,y,x\n" + "1,2,3\n" * 20),
                               ["duplicate column name", "'x'"]),
    "missing file": (lambda p: p / "nope.csv", ["file not found", "nope.csv"]),
    "unknown format": (lambda p: _csv(p, "table.txt", "x\n1\n"), ["unknown table format", ".xlsx"]),
    "ragged rows": (lambda p: _csv(p, "ragged.csv", "x,y,kind\n" + "1,2,a\n" * 12 + "1,2,a,EXTRA\n" + "1,2,b\n" * 5
                                   + "3,4,c,d,e\n"), ["more fields than the header", "rows 12, 18"]),
    "infinite numbers": (lambda p: _table_with(p, "inf.csv", z=[np.inf, -np.inf] + [1.0] * (ROWS - 2)),
                         ["column 'z'", "infinite", "rows 0, 1"]),
    "latitude out of range": (lambda p: _table_with(p, "geo.csv", latitude=[95.0] + [45.0, 46.0] * (ROWS // 2 - 1) + [47.0],
                                                    longitude=[5.0, 6.0] * (ROWS // 2)), ["column 'latitude'", "rows 0"]),
    "image path escaping its root": (lambda p: _table_with(p, "images.csv", photo=[f"../../secret{i}.png" for i in range(ROWS)]),
                                     ["column 'photo'", "outside"]),
    "not a JSON array of records": (lambda p: _csv(p, "scalars.json", "[1, 2, 3]"), ["records"]),
    "corrupt parquet": (lambda p: _csv(p, "broken.parquet", "not parquet at all"), ["cannot read", "parquet"]),
}


@pytest.mark.parametrize("case", sorted(REFUSED_INPUTS))
def test_bad_input_is_refused_with_what_and_where(outcomes, case):
    done, (expected, out) = outcomes[("refused", case)]
    report = refusal(done)
    for text in expected:
        assert text in report, report
    assert not out.exists()  # refused before anything was written


def test_roles_file_naming_a_missing_column(commands):
    report = refused("roles naming a missing column", commands)
    assert "column 'nope'" in report and "does not have" in report
    assert "unknown role 'colour'" in report


def test_k_larger_than_the_training_rows(commands):
    assert "k=40 is not smaller than the 32 training rows" in refused("k larger than the rows", commands)


def test_out_holding_a_published_run(commands):
    report = refused("out holding a published run", commands)
    assert "--out" in report and "already holds a published run" in report


# One test per run parameter: each broken rule is named by its flag (the data file is missing
# too, and both come in one report).

PARAMETER_MISTAKES = {
    "--k": (["--k", "1", "101"], ["--k", "out of range: [1, 101]"]),
    "--k count": (["--k", *map(str, range(2, 13))], ["--k", "at most 10 k values"]),
    "--algorithms": (["--algorithms", "kmeans,nope"], ["--algorithms", "'nope'", "known: "]),
    "--weights key": (["--weights", "numeric=1,colour=2"], ["--weights", "unknown modality ['colour']"]),
    "--weights syntax": (["--weights", "numeric:1"], ["--weights", "'numeric:1' is not modality=number"]),
    "--weights negative": (["--weights", "numeric=-1"], ["--weights", ">= 0"]),
    "--mode": (["--mode", "fast"], ["--mode", "'comprehensive' or 'quick'"]),
    "--seed": (["--seed", "-1"], ["--seed", "greater than or equal to 0"]),
    "--validation-fraction": (["--validation-fraction", "0.95"], ["--validation-fraction", "less than 0.9"]),
    "--text-featurizer": (["--text-featurizer", "bag"], ["--text-featurizer", "'embedding' or 'tfidf'"]),
    "--text-model": (["--text-model", "/no/such/model"], ["--text-model", "--text-featurizer tfidf"]),
    "--image-model": (["--image-model", "./no-such-model"], ["--image-model", "no model folder"]),
    "--image-root": (["--image-root", "/no/such/folder"], ["--image-root", "no folder"]),
    "--on-bad-image": (["--on-bad-image", "skip"], ["--on-bad-image", "'error' or 'missing'"]),
    "--text-model with tfidf": (["--text-featurizer", "tfidf", "--text-model", "."],
                                ["text_model applies to the embedding text featurizer only"]),
}


@pytest.mark.parametrize("case", sorted(PARAMETER_MISTAKES))
def test_run_parameter_mistake_is_named_with_the_rest(outcomes, case):
    done, expected = outcomes[("parameter", case)]
    report = refusal(done)
    for text in expected:
        assert text in report, report
    assert "file not found" in report  # every problem in one report


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case above, run up front a few at a time (each is mostly start-up and imports, so the
    cores overlap them): case -> (the finished command, what its test expects)."""
    commands = {}
    for name, make in READ_INPUTS.items():
        path, expected = make(tmp_path_factory.mktemp(name))
        commands[("read", name)] = (["inspect", str(path)], expected)
    for name, (make, expected) in REFUSED_INPUTS.items():
        folder = tmp_path_factory.mktemp("refused")
        out = folder / "run"
        commands[("refused", name)] = (["run", str(make(folder)), "--out", str(out)], (expected, out))
    for name, (args, expected) in PARAMETER_MISTAKES.items():
        missing = tmp_path_factory.mktemp("parameter") / "missing.csv"
        commands[("parameter", name)] = (["run", str(missing), *args], expected)
    with ThreadPoolExecutor(max_workers=PARALLEL_COMMANDS) as pool:
        finished = dict(zip(commands, pool.map(lambda argv: clusterflow(*argv), (a for a, _ in commands.values()))))
    return {case: (finished[case], expected) for case, (_, expected) in commands.items()}


def test_every_mistake_of_a_run_in_one_report(commands):
    assert refused("every mistake of a run", commands).startswith("error: 5 problem(s)")


def test_a_value_of_the_wrong_type_is_a_usage_error(commands):
    assert "Invalid value for '--k'" in refused("a value of the wrong type", commands)


# The other commands.

@pytest.fixture(scope="module")
def published_run(tmp_path_factory):
    from tests.hostile_run import publish_hostile_run

    folder, manifest, *_ = publish_hostile_run(tmp_path_factory.mktemp("published"))
    return folder.uri


@pytest.fixture(scope="module")
def commands(tmp_path_factory, published_run) -> dict[str, subprocess.CompletedProcess]:
    """The commands of the tests around it, run up front a few at a time like ``outcomes``: name -> the
    finished command. Each test checks its own (exit code, message, no traceback)."""
    folder = tmp_path_factory.mktemp("commands")
    table, missing, no_run = str(folder / "table.csv"), str(folder / "missing.csv"), str(folder / "no-run")
    numbers_table().to_csv(table, index=False)
    roles = folder / "roles.yaml"
    roles.write_text("nope: numeric\nx: colour\n")
    done = folder / "done"
    done.mkdir()
    (done / "manifest.json").write_text(json.dumps({"status": "complete"}))
    without_server = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    argvs = {
        "roles naming a missing column": ["run", table, "--roles", str(roles)],
        "k larger than the rows": ["run", table, "--k", "3", "40"],
        "out holding a published run": ["run", table, "--out", str(done)],
        "every mistake of a run": ["run", table, "--k", "1", "--algorithms", "nope", "--weights", "colour=1",
                                   "--mode", "fast", "--seed", "-2"],
        "a value of the wrong type": ["run", table, "--k", "three"],
        "predict mistakes": ["predict", no_run, missing, "--out", str(folder / "out.parquet"), "--blocksize", "lots"],
        "predict without --out": ["predict", published_run, table],
        "rerun of no run": ["rerun", no_run, "--k", "1"],
        "rerun of an unknown model": ["rerun", published_run, "--k", "5", "--model", "nope"],
        "report mistakes": ["report", published_run, "--model", "nope", "--associations", "pearson",
                            "--projection", "umap"],
        "recluster mistakes": ["recluster", missing, "--tolerance", "-1", "--algorithms", "nope"],
        "promote of no run": ["promote", no_run, "kmeans-k3"],
        "promote of an unknown model": ["promote", published_run, "nope", "--runs-root", str(folder)],
        "notify without a server": ["notify", "data.csv"],
        "serve without a server": ["serve"],
        "inspect mistakes": ["inspect", missing],
        "help": ["--help"],
    }

    def finish(argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run([CLUSTERFLOW, *argv], capture_output=True, text=True, timeout=600, env=without_server)

    with ThreadPoolExecutor(max_workers=PARALLEL_COMMANDS) as pool:
        return dict(zip(argvs, pool.map(finish, argvs.values())))


def test_predict_mistakes(commands):
    report = refused("predict mistakes", commands)
    assert "MODEL: no model at" in report and "DATA: file not found" in report and "--blocksize" in report
    assert "Missing option '--out'" in refused("predict without --out", commands)


def test_rerun_mistakes(commands):
    report = refused("rerun of no run", commands)
    assert "--k" in report and "RUN: no published run" in report
    assert "no model 'nope'" in refused("rerun of an unknown model", commands)


def test_report_mistakes(commands):
    report = refused("report mistakes", commands)
    assert "--model" in report and "--associations" in report and "--projection" in report


def test_recluster_mistakes(commands):
    report = refused("recluster mistakes", commands)
    assert "--tolerance" in report and "--algorithms" in report and "file not found" in report


def test_promote_mistakes(commands):
    assert "no published run" in refused("promote of no run", commands)
    assert "nope" in refused("promote of an unknown model", commands)


def test_promote_waits_for_a_promotion_in_progress(published_run, tmp_path):
    from clusterflow.promotion import promotion_lock, read_promoted
    from clusterflow.run_folder import RunFolder

    model_id, runs_root = RunFolder(published_run).manifest().top_model, str(tmp_path)
    with promotion_lock(runs_root, "shop", "recluster"):
        command = subprocess.Popen([CLUSTERFLOW, "promote", published_run, model_id, "--runs-root", runs_root,
                                    "--dataset", "shop"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in command.stderr], daemon=True)
        reader.start()
        waiting = ""
        while "waiting up to" not in waiting:  # what the user reads while it waits
            waiting += lines.get(timeout=120)
        assert "waiting up to 600 s for the lock" in waiting and "being changed by a recluster" in waiting
        assert command.poll() is None and read_promoted(runs_root, "shop") is None
    command.wait(timeout=120)
    reader.join(timeout=10)
    out, err = command.stdout.read(), "".join(lines.queue)
    assert command.returncode == 0 and TRACEBACK not in waiting + out + err
    assert f"promoted {model_id}" in out and read_promoted(runs_root, "shop").model_id == model_id


@pytest.mark.parametrize("command", ["notify", "serve"])
def test_commands_needing_a_prefect_server_say_so(commands, command):
    done = no_traceback(commands[f"{command} without a server"])
    assert done.returncode == 2 and "PREFECT_API_URL" in done.stderr


def test_inspect_mistakes(commands):
    assert "file not found" in refused("inspect mistakes", commands)


def test_help_lists_every_command(commands):
    done = no_traceback(commands["help"])
    assert done.returncode == 0
    for command in ("run", "inspect", "predict", "report", "describe", "rerun", "promote", "recluster", "serve",
                    "serve-model", "notify", "demo"):
        assert f"  {command} " in done.stdout
