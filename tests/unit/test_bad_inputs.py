"""Every rejected input names the column, the rows and the rule, and all problems come together."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clusterflow import runs
from clusterflow.errors import InputValidationError
from schemas.parameters import parse_parameters


def _table(n=40, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n), "kind": rng.choice(["a", "b"], n)})


def _problems(excinfo) -> list:
    return excinfo.value.problems


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(InputValidationError, match="empty") as excinfo:
        runs.load_input(str(path))
    assert len(_problems(excinfo)) == 1


def test_header_only(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("x,y,kind\n")
    with pytest.raises(InputValidationError, match="no rows"):
        runs.load_input(str(path))


def test_one_row(tmp_path):
    path = tmp_path / "one.csv"
    _table().head(1).to_csv(path, index=False)
    with pytest.raises(InputValidationError, match="fewer than 10 rows"):
        runs.load_input(str(path))


def test_duplicate_column_names(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("x,y,x\n1,2,3\n")
    with pytest.raises(InputValidationError) as excinfo:
        runs.load_input(str(path))
    assert [p.column for p in _problems(excinfo)] == ["x"]
    assert "duplicate column name" in str(excinfo.value)


@pytest.mark.parametrize("make_columns", [
    lambda n: {"id": np.arange(n), "key": [f"k{i}" for i in range(n)]},  # all ids
    lambda n: {"a": [1] * n, "b": ["same"] * n},  # all constant
    lambda n: {"a": [np.nan] * n, "b": [None] * n},  # all empty
], ids=["all-ids", "all-constant", "all-empty"])
def test_no_usable_column(tmp_path, make_columns):
    path = tmp_path / "unusable.csv"
    pd.DataFrame(make_columns(30)).to_csv(path, index=False)
    with pytest.raises(InputValidationError, match="no usable column"):
        runs.load_input(str(path))


def test_numeric_column_of_mostly_strings_declared_numeric(tmp_path):
    table = _table()
    table["income"] = ["high", "low", "medium", "12.5"] * 10
    data, roles = tmp_path / "t.csv", tmp_path / "roles.yaml"
    table.to_csv(data, index=False)
    roles.write_text("income: numeric\n")
    with pytest.raises(InputValidationError) as excinfo:
        runs.load_input(str(data), str(roles))
    (problem,) = _problems(excinfo)
    assert problem.column == "income" and problem.rule == "values are not numbers"
    assert problem.rows[:3] == (0, 1, 2) and problem.n_rows == 30
    assert "roles file" in problem.hint


def test_stray_strings_in_an_inferred_numeric_column_are_listed_by_row(tmp_path):
    table = _table(100).astype({"x": object})
    table.loc[[7, 42], "x"] = "oops"
    table.loc[9, "x"] = "N/A"  # a missing-value token, not an error
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    with pytest.raises(InputValidationError) as excinfo:
        runs.load_input(str(path))
    (problem,) = _problems(excinfo)
    assert (problem.column, problem.rows) == ("x", (7, 42))


def test_all_problems_are_reported_together(tmp_path):
    table = _table(5)
    table["amount"] = ["a", "b", "c", "d", "1"]
    data, roles = tmp_path / "t.csv", tmp_path / "roles.yaml"
    table.to_csv(data, index=False)
    roles.write_text("amount: numeric\n")
    with pytest.raises(InputValidationError) as excinfo:
        runs.load_input(str(data), str(roles))
    rules = {p.rule for p in _problems(excinfo)}
    assert rules == {"values are not numbers", "the table has fewer than 10 rows"}


@pytest.mark.parametrize("k, message", [
    ([1, 3], "out of range: [1]"),
    ([3, 101], "out of range: [101]"),
    (list(range(2, 14)), "at most 10 k values"),
])
def test_k_values_out_of_bounds(k, message):
    with pytest.raises(InputValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_parameters(k=k)


def test_k_larger_than_training_rows(tmp_path):
    path = tmp_path / "t.csv"
    _table(20).to_csv(path, index=False)
    inputs = runs.load_input(str(path))
    with pytest.raises(InputValidationError, match="k=16 is not smaller than the 16 training rows"):
        runs.prepare_features(inputs, parse_parameters(k=[3, 16]))


def test_unknown_algorithm_is_rejected(tmp_path):
    path = tmp_path / "t.csv"
    _table().to_csv(path, index=False)
    with pytest.raises(ValueError, match="unknown algorithm"):
        runs.prepare_features(runs.load_input(str(path)), parse_parameters(algorithms=["kmeans", "dbscan++"]))


@pytest.mark.parametrize("name, content", [
    ("garbage.parquet", b"this is not parquet"),
    ("table.xlsx", b"PK\x03\x04"),
])
def test_unreadable_file_or_wrong_format(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputValidationError, match="cannot read|unknown table format"):
        runs.load_input(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(InputValidationError, match="file not found"):
        runs.load_input(str(tmp_path / "nope.csv"))


def test_roles_file_naming_missing_columns(tmp_path):
    data, roles = tmp_path / "t.csv", tmp_path / "roles.json"
    _table().to_csv(data, index=False)
    roles.write_text('{"x": "numeric", "colour": "categorical", "y": "shape"}')
    with pytest.raises(InputValidationError) as excinfo:
        runs.load_input(str(data), str(roles))
    found = {(p.column, p.rule.split(":")[0]) for p in _problems(excinfo)}
    assert found == {("colour", "the roles file names a column the table does not have"), ("y", "unknown role 'shape'")}


def test_poor_columns_are_dropped_with_a_reason_not_fatal(tmp_path):
    table = _table(100)
    table["constant"] = 5
    table["sparse"] = np.where(np.arange(100) < 2, 1.0, np.nan)
    table["code"] = [f"ORD-{i:05d}" for i in range(100)]
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    roles = {d.column: (d.role, d.reason) for d in runs.load_input(str(path)).decisions}
    assert roles["constant"] == ("ignore", "dropped: constant (one distinct value)")
    assert roles["sparse"][0] == "ignore" and "missing" in roles["sparse"][1]
    assert roles["code"][0] == "id"
    assert roles["x"][0] == "numeric" and roles["kind"][0] == "categorical"
