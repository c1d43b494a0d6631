"""Partitioned tables without Prefect or a cluster: the sample, the merged report, validation over partitions."""
from __future__ import annotations

import numpy as np
import pytest

from clusterflow.errors import InputValidationError, Problem
from clusterflow.inputs import is_partitioned_table, load_input
from clusterflow.large_tables import merge_problems, sample_positions
from clusterflow.samples import customers


def test_the_sample_is_seeded_and_distinct_and_the_whole_table_when_smaller():
    drawn = sample_positions(1_000_000, 500, seed=3)
    assert len(np.unique(drawn)) == 500 and (np.diff(drawn) > 0).all() and drawn.max() < 1_000_000
    assert (drawn == sample_positions(1_000_000, 500, seed=3)).all()
    assert not (drawn == sample_positions(1_000_000, 500, seed=4)).all()
    assert (sample_positions(50, 500, seed=3) == np.arange(50)).all()


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
