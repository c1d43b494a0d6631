"""Real-world columns: dates and times, booleans, high-cardinality labels, keys and prose.

Every column gets a sensible role and a bounded featurized width, the decisions are
explained (the manifest's column reports, the roles file).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from clusterflow import temporal
from clusterflow.blueprint import make_featurizer
from clusterflow.errors import InputValidationError
from clusterflow.explain import column_reports
from clusterflow.modalities.categorical import MAX_LEVELS
from clusterflow.modalities.datetime import MAX_WIDTH as DATETIME_MAX_WIDTH
from clusterflow.modalities.datetime import DatetimeFeaturizer
from clusterflow.roles import infer_roles
from clusterflow.validation import validate_table
from tests.planted import EXPECTED_ROLES, realworld_table


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return realworld_table()


@pytest.fixture(scope="module")
def fitted(table):
    """The featurizer fitted on the first 10,000 rows (numeric, categorical and datetime blocks)."""
    decisions = [d for d in infer_roles(table) if d.role != "text"]
    return decisions, make_featurizer(decisions).fit(table.iloc[:10_000])


def test_every_column_gets_the_right_role(table):
    decisions = {d.column: d for d in infer_roles(table)}
    assert {c: d.role for c, d in decisions.items()} == EXPECTED_ROLES
    assert "ISO8601" in decisions["posted_iso"].reason
    assert "%d/%m/%Y %H:%M" in decisions["posted_eu"].reason
    assert "40 unparseable" in decisions["posted_eu"].reason
    assert "seconds since 1970" in decisions["created_at"].reason
    assert "5000 distinct" in decisions["product"].reason
    assert "prose" in decisions["review"].reason


def test_dates_need_a_consistent_parse_rate_not_one_lucky_row():
    n = 200
    lucky = pd.Series(["2026-11-26 14:05"] + [f"batch {i}" for i in range(n - 1)])
    mostly = pd.Series(["26/11/2026 14:05"] * 180 + [f"batch {i}" for i in range(20)])  # 90% parse
    month_first = pd.Series([f"11/{d:02d}/2026 09:30" for d in range(1, 29)] * 5)
    frame = pd.DataFrame({"lucky": lucky, "mostly": mostly, "month_first": month_first.head(n).reindex(range(n))})
    roles = {d.column: d for d in infer_roles(frame)}
    assert roles["lucky"].role != "datetime" and roles["mostly"].role != "datetime"
    assert roles["month_first"].role == "datetime" and "%m/%d/%Y %H:%M" in roles["month_first"].reason


@pytest.mark.parametrize("text, instant", [
    ("2026-11-26T14:05:00Z", "2026-11-26 14:05"), ("2026-11-26 16:05:00+02:00", "2026-11-26 14:05"),
    ("2026-11-26", "2026-11-26 00:00"), ("26/11/2026 14:05", "2026-11-26 14:05"), ("26/11/2026", "2026-11-26 00:00"),
    ("11/26/2026 14:05", "2026-11-26 14:05"), ("11/26/2026 02:05 PM", "2026-11-26 14:05"),
    ("26.11.2026", "2026-11-26 00:00"), ("26-11-2026", "2026-11-26 00:00"), ("2026/11/26", "2026-11-26 00:00"),
    ("26 Nov 2026", "2026-11-26 00:00"), ("November 26, 2026", "2026-11-26 00:00"), ("Nov 26 2026", "2026-11-26 00:00"),
    ("Nov 6 2026", "2026-11-06 00:00"), ("November 26 2026", "2026-11-26 00:00"), ("Nov 2026", "2026-11-01 00:00"),
    ("Thu Nov 26 14:05:00 +0000 2026", "2026-11-26 14:05"), ("Thu, 26 Nov 2026 15:05:00 +0100", "2026-11-26 14:05"),
])
def test_documented_formats_are_recognised_and_read_in_utc(text, instant):
    years = pd.Series([text.replace("2026", str(year)) for year in range(2006, 2026)] + [text])
    [decision] = infer_roles(pd.DataFrame({"when": years, "x": np.arange(21) % 3}))[:1]
    assert decision.role == "datetime"
    fmt, fraction = temporal.parse_format(years)
    assert fraction == 1.0 and temporal.to_utc(years, fmt).iloc[-1] == pd.Timestamp(instant, tz="UTC")


def test_a_number_named_like_a_time_must_be_in_the_epoch_range():
    frame = pd.DataFrame({"response_time": np.arange(100) * 3.5 + 40,
                          "event_ts": 1_790_000_000_000 + np.arange(100) * 60_000})
    roles = {d.column: d for d in infer_roles(frame)}
    assert roles["response_time"].role == "numeric"
    assert roles["event_ts"].role == "datetime" and "milliseconds" in roles["event_ts"].reason


def test_a_datetime_role_on_values_that_do_not_parse_names_the_column_and_rows():
    frame = pd.DataFrame({"when": ["2026-01-01"] * 12 + ["soon", "later"] * 4, "x": np.arange(20.0)})
    with pytest.raises(InputValidationError) as excinfo:
        validate_table(frame, [d for d in infer_roles(frame, {"when": "datetime"})])
    [problem] = excinfo.value.problems
    assert problem.column == "when" and problem.rows == tuple(range(12, 20))
    assert "do not parse as dates/times" in problem.rule


def test_widths_are_bounded_and_booleans_are_one_feature(table, fitted):
    decisions, featurizer = fitted
    reports = {r.column: r for r in column_reports(table, decisions, featurizer)}
    assert reports["product"].width <= MAX_LEVELS
    assert reports["product"].details["frequency"] and reports["product"].details["levels"] >= 4_000
    for column in ("posted_iso", "posted_eu", "created_at"):
        assert 3 <= reports[column].width <= DATETIME_MAX_WIDTH
    for column in ("active", "subscribed", "verified", "flag"):
        assert reports[column].width == 1
    assert reports["order_key"].width is None and reports["session"].width is None
    total = featurizer.transform(table.head(5)).shape[1]
    assert total == sum(r.width for r in reports.values() if r.width) <= 5 + 3 * DATETIME_MAX_WIDTH + MAX_LEVELS


def test_booleans_in_any_spelling_become_the_same_zero_one_feature(table, fitted):
    _, featurizer = fitted
    names = list(featurizer.get_feature_names_out())
    features = pd.DataFrame(featurizer.transform(table), columns=names)
    for column in ("active", "subscribed", "verified", "flag"):
        truth = table[column].astype(str).str.lower().isin(["true", "yes", "t"])
        assert features[f"numeric__{column}"].nunique() == 2
        assert features.groupby(truth.to_numpy())[f"numeric__{column}"].nunique().eq(1).all()


def test_time_zones_are_normalised_to_utc():
    same_instant = pd.DataFrame({"at": ["2026-11-26T14:05:00+02:00", "2026-11-26T12:05:00Z",
                                        "2026-11-26T07:05:00-05:00", "2026-05-01T00:00:00Z"]})
    features = DatetimeFeaturizer().fit(same_instant).transform(same_instant)
    np.testing.assert_allclose(features[0], features[1])
    np.testing.assert_allclose(features[0], features[2])
    assert not np.allclose(features[0], features[3])


def test_only_parts_that_vary_are_encoded():
    days = pd.DataFrame({"day": pd.date_range("2026-01-01", periods=60, freq="D").strftime("%Y-%m-%d")})
    featurizer = DatetimeFeaturizer().fit(days)
    assert featurizer.parts_["day"] == ["weekday", "month"]  # date-only: the hour never varies
    one_day = pd.DataFrame({"at": pd.date_range("2026-03-02 08:00", periods=20, freq="30min")})
    assert DatetimeFeaturizer().fit(one_day).parts_["at"] == ["hour"]


def test_new_rows_with_unseen_dates_and_levels_are_featurized(table, fitted):
    _, featurizer = fitted
    names = list(featurizer.get_feature_names_out())
    new = table.tail(4).copy().reset_index(drop=True)
    new["posted_iso"] = ["2031-07-04T03:00:00Z", "garbage", None, "2019-02-28T23:59:59+09:00"]
    new["posted_eu"] = ["01/01/2032 00:00", "32/13/2032 25:00", None, "15/06/2026 12:30"]
    new["created_at"] = [2_000_000_000, 1_500_000_000, 1_700_000_000, 1_600_000_000]
    new["product"] = ["SKU-99999", "never-seen", None, table["product"].iloc[:10_000].mode()[0]]
    features = pd.DataFrame(featurizer.transform(new), columns=names)
    assert np.isfinite(features.to_numpy()).all()
    assert features.loc[0, "datetime__posted_iso:time"] > 1  # later than every training date
    iso = [n for n in names if n.startswith("datetime__posted_iso:")]
    assert (features.loc[[1, 2], iso] == 0).all().all()  # unparseable and missing: the centre of every feature
    assert features.loc[1, "datetime__posted_eu:missing"] > 0  # an impossible date is unparseable, not an error
    assert features.loc[2, "datetime__posted_eu:missing"] > 0 and features.loc[3, "datetime__posted_eu:missing"] == 0
    assert features.loc[0, "categorical__product=(other)"] > 0 and features.loc[1, "categorical__product=(other)"] > 0
    frequency = features["categorical__product:frequency"]
    assert frequency[0] == frequency[1] < frequency[3]  # unseen levels count as the rarest
    assert features.loc[3, "categorical__product=(other)"] == 0


def test_the_manifest_records_missing_and_unparseable_dates(table, fitted):
    decisions, featurizer = fitted
    details = {r.column: r.details for r in column_reports(table, decisions, featurizer)}["posted_eu"]
    train = table.iloc[:10_000]["posted_eu"]
    assert details["missing"] == train.isna().sum() > 0
    assert details["unparseable"] == (train == "not a date").sum() > 0
    assert details["format"] == "%d/%m/%Y %H:%M"


def test_roles_file_round_trip_is_plain_yaml(table, tmp_path):
    from clusterflow.explain import roles_yaml

    reports = column_reports(table, infer_roles(table))
    assert yaml.safe_load(roles_yaml(reports)) == {r.column: r.role for r in reports}
