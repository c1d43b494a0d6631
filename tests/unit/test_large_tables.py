"""Partitioned tables without Prefect or a cluster: the sample, the merged report, validation over partitions."""
from __future__ import annotations

import numpy as np
import pytest

from clusterflow.errors import InputValidationError, Problem
from clusterflow.inputs import is_partitioned_table, load_input
from clusterflow import large_tables
from clusterflow.large_tables import merge_problems
from clusterflow.samples import customers


def write_parts(table, folder, files: int = 3) -> str:
    rows = len(table) // files
    for number in range(files):
        table.iloc[number * rows:(number + 1) * rows].to_csv(folder / f"part-{number}.csv", index=False)
    return str(folder / "*.csv")


def test_the_sample_is_the_seeded_smallest_keys_and_the_whole_table_when_smaller(tmp_path):
    table = customers(600, seed=2, with_segment=False)
    uri = write_parts(table, tmp_path)
    drawn = load_input(uri, sample_rows=150, seed=3)
    keys = np.concatenate([large_tables.row_keys(200, 3, number) for number in range(3)])
    assert (drawn.sample.positions == np.sort(np.argsort(keys)[:150])).all()
    assert drawn.frame["customer_id"].tolist() == table["customer_id"].iloc[drawn.sample.positions].tolist()
    assert drawn.sample.total_rows == 600 and drawn.sample.partition_rows == (200, 200, 200)
    assert not (load_input(uri, sample_rows=150, seed=4).sample.positions == drawn.sample.positions).all()
    assert (load_input(uri, sample_rows=700, seed=3).sample.positions == np.arange(600)).all()


def test_one_pass_draws_counts_and_validates_unless_the_sample_changes_the_roles(tmp_path, monkeypatch):
    scanned = []
    scan = large_tables._scan_partition
    monkeypatch.setattr(large_tables, "_scan_partition", lambda part, number, *args: scanned.append(number) or
                        scan(part, number, *args))
    table = customers(600, seed=2, with_segment=False)
    load_input(write_parts(table, tmp_path), sample_rows=150, seed=3)
    assert sorted(scanned) == [0, 1, 2]  # every partition read once (the head read only the first)

    scanned.clear()
    table["plan"] = ["basic"] * 200 + list(table["plan"].iloc[200:])  # constant in the first partition only
    (tmp_path / "again").mkdir()
    inputs = load_input(write_parts(table, tmp_path / "again"), sample_rows=150, seed=3)
    assert inputs.roles["plan"] == "categorical" and sorted(scanned) == [0, 0, 1, 1, 2, 2]


def test_problems_of_partitions_merge_per_column_and_rule():
    merged = merge_problems([Problem(rule="values are not numbers", column="age", rows=(3, 5), n_rows=2),
                             Problem(rule="no usable column"),
                             Problem(rule="values are not numbers", column="age", rows=(700,), n_rows=1),
                             Problem(rule="no usable column")])
    assert merged == [Problem(rule="values are not numbers", column="age", rows=(3, 5, 700), n_rows=3),
                      Problem(rule="no usable column")]


def test_a_bad_value_in_a_later_file_is_reported_with_its_row_in_the_whole_table(tmp_path):
    table = customers(300, seed=2, with_segment=False)
    table["age"] = table["age"].astype(object)
    table.loc[250, "age"] = "unknown"
    for number in range(3):
        table.iloc[number * 100:(number + 1) * 100].to_csv(tmp_path / f"part-{number}.csv", index=False)
    (tmp_path / "roles.json").write_text('{"age": "numeric"}')
    assert is_partitioned_table(str(tmp_path / "*.csv")) and is_partitioned_table(str(tmp_path))
    with pytest.raises(InputValidationError) as caught:
        load_input(str(tmp_path / "*.csv"), str(tmp_path / "roles.json"), sample_rows=100, seed=0)
    assert [(p.column, p.rows, p.rule) for p in caught.value.problems] == [("age", (250,), "values are not numbers")]


@pytest.mark.parametrize("estimate", [10, 10**9])  # a row count estimated far too low or far too high
def test_the_sample_does_not_depend_on_the_row_count_estimate(tmp_path, monkeypatch, estimate):
    uri = write_parts(customers(600, seed=2, with_segment=False), tmp_path)
    expected = load_input(uri, sample_rows=150, seed=3).sample.positions
    monkeypatch.setattr(large_tables.TableDataset, "estimated_rows", lambda self, rows: (estimate, False))
    assert (load_input(uri, sample_rows=150, seed=3).sample.positions == expected).all()
