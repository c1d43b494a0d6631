"""Reading the tables users hand over: encodings, delimiters, decimal commas, JSON, Excel, nested values."""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from clusterflow.errors import InputValidationError
from clusterflow.inputs import load_input, preload_input
from clusterflow.roles import infer_roles
from clusterflow.storage import decode_text, read_table, sniff_delimiter


def _write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return str(path)


@pytest.mark.parametrize("encoding, text", [("latin-1", "größe,région\n1,süd\n2,nord\n"),
                                            ("cp1252", "prix €,note\n1,“quoted”\n2,plain\n"),
                                            ("utf-8-sig", "größe,région\n1,süd\n2,nord\n")])
def test_text_encodings_are_decoded(tmp_path, encoding, text):
    frame = read_table(_write(tmp_path / "t.csv", text, encoding))
    expected = pd.read_csv(pd.io.common.StringIO(text))
    assert list(frame.columns) == list(expected.columns)  # no BOM left on the first name
    assert frame.iloc[0, 1] == expected.iloc[0, 1]


def test_semicolons_with_decimal_commas(tmp_path):
    frame = read_table(_write(tmp_path / "eu.csv", "höhe;gewicht;art\n1,5;70,25;a\n-2,75;80;b\n3;1,0;c\n"))
    assert list(frame.columns) == ["höhe", "gewicht", "art"]
    assert frame["höhe"].tolist() == [1.5, -2.75, 3.0] and frame["gewicht"].tolist() == [70.25, 80.0, 1.0]


def test_semicolons_keep_decimal_points(tmp_path):
    frame = read_table(_write(tmp_path / "semi.csv", "a;b\n1.5;x,y\n2.5;z\n"))
    assert frame["a"].tolist() == [1.5, 2.5] and frame["b"].tolist() == ["x,y", "z"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(delimiter):
    sample = delimiter.join(["a", "b", "c"]) + "\n" + delimiter.join(["1", "2", "x"]) + "\n"
    assert sniff_delimiter(sample) == delimiter


def test_quoted_fields_with_newlines_and_delimiters(tmp_path):
    text = 'x,note\n1,"two\nlines, and a comma"\n2,plain\n'
    frame = read_table(_write(tmp_path / "nl.csv", text))
    assert len(frame) == 2 and frame["note"][0] == "two\nlines, and a comma"


def test_rows_longer_than_the_header_are_listed(tmp_path):
    with pytest.raises(InputValidationError) as excinfo:
        read_table(_write(tmp_path / "ragged.csv", "a,b\n1,2\n1,2,3\n4,5\n6,7,8,9\n"))
    (problem,) = excinfo.value.problems
    assert problem.rows == (1, 3) and "more fields than the header" in problem.rule


def test_json_array_of_records(tmp_path):
    path = tmp_path / "records.json"
    path.write_text(json.dumps([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]))
    frame = read_table(str(path))
    assert frame.to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}


def test_json_lines_saved_as_json(tmp_path):
    path = tmp_path / "lines.json"
    path.write_text('{"a": 1}\n{"a": 2}\n')
    assert read_table(str(path))["a"].tolist() == [1, 2]


def test_excel_first_sheet(tmp_path):
    path = tmp_path / "book.xlsx"
    pd.DataFrame({"a": [1.5, 2.5], 3: ["x", "y"]}).to_excel(path, index=False)
    frame = read_table(str(path))
    assert list(frame.columns) == ["a", "3"] and frame["a"].tolist() == [1.5, 2.5]


def test_nested_parquet_values_become_json_text_and_are_ignored(tmp_path):
    n = 30
    table = pd.DataFrame({"x": np.arange(n) % 7 * 1.5, "tags": [["a", str(i % 3)] for i in range(n)],
                          "address": [{"city": f"c{i % 4}", "zip": i} for i in range(n)]})
    path = tmp_path / "nested.parquet"
    table.to_parquet(path)
    frame = read_table(str(path))
    assert json.loads(frame["tags"][1]) == ["a", "1"] and json.loads(frame["address"][2]) == {"city": "c2", "zip": 2}
    roles = {d.column: (d.role, d.reason) for d in infer_roles(frame)}
    assert roles["tags"][0] == roles["address"][0] == "ignore" and "nested" in roles["tags"][1]
    assert roles["x"][0] == "numeric"


def test_infinite_numbers_are_refused_by_row(tmp_path):
    table = pd.DataFrame({"x": [1.0, np.inf, 3.0, -np.inf] * 5, "kind": ["a", "b"] * 10})
    path = tmp_path / "inf.csv"
    table.to_csv(path, index=False)
    with pytest.raises(InputValidationError) as excinfo:
        load_input(str(path))
    (problem,) = excinfo.value.problems
    assert problem.column == "x" and problem.rows[:2] == (1, 3) and problem.n_rows == 10


def test_decoding_falls_back_to_latin1_for_any_byte():
    assert decode_text(bytes([0x81, 0x41])) == "\x81A"  # 0x81 is undefined in cp1252


def test_a_preloaded_input_is_handed_over_once_and_only_while_the_file_is_unchanged(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": np.arange(20) % 5 * 1.0, "kind": ["a", "b"] * 10}).to_csv(path, index=False)
    first = preload_input(str(path))
    assert load_input(str(path)) is first
    assert load_input(str(path)) is not first  # handed over once
    preload_input(str(path))
    pd.DataFrame({"x": np.arange(30) % 5 * 1.0, "kind": ["a", "b"] * 15}).to_csv(path, index=False)
    assert len(load_input(str(path)).frame) == 30  # the file changed: read again


def test_terminal_log_of_a_user_mistake_has_no_traceback():
    from flows.prefect_setup import _UserErrorWithoutTraceback

    def record(error: Exception) -> logging.LogRecord:
        try:
            raise error
        except Exception:
            import sys

            return logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())

    user, bug = record(InputValidationError([])), record(KeyError("bug"))
    assert _UserErrorWithoutTraceback().filter(user) and user.exc_info is None
    assert _UserErrorWithoutTraceback().filter(bug) and bug.exc_info is not None


def test_csv_read_by_partitions_gets_the_dtypes_pandas_infers(tmp_path):
    """`predict --blocksize` reads CSV as strings (Dask's string dtype); numbers must come back as NumPy numbers."""
    from clusterflow.predicting import _infer_numbers, read_partitioned

    path = tmp_path / "t.csv"
    pd.DataFrame({"spend": [1.5, None, 3.0], "visits": [1, 2, 3], "tier": ["a", "b", "7"]}).to_csv(path, index=False)
    part = _infer_numbers(read_partitioned(str(path), "64MB").partitions[0].compute())
    expected = pd.read_csv(path)
    assert part["spend"].dtype == expected["spend"].dtype == np.float64
    assert part["visits"].dtype == expected["visits"].dtype == np.int64
    assert np.isnan(part["spend"].iloc[1]) and not pd.api.types.is_numeric_dtype(part["tier"])
