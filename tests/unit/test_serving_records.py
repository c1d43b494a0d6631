"""The service's path from JSON records to clusters gives what ``ClusterModel.predict`` gives for the same rows.

The service featurizes numeric and categorical values without a DataFrame
(:mod:`clusterflow.record_features`) and checks a batch of requests at once; these tests hold
it to the model's own answers (unseen levels, missing values and tokens, numbers sent as
strings, a text column, a label sent as a number) and to one report per request.
"""
from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

import clusterflow
from clusterflow.errors import InputValidationError
from clusterflow.samples import customers, reviews
from clusterflow.serving import ServedModel, assign_batch, read_records, record_rows


@pytest.fixture(scope="module")
def table():
    frame = customers(240, seed=11).drop(columns="segment")
    frame["review"] = reviews(240, seed=11, with_segment=False)["review"]
    rng = np.random.default_rng(11)
    frame["signed_up"] = (pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, 240), unit="D")
                          ).strftime("%Y-%m-%d")
    frame["store_lat"], frame["store_lon"] = rng.uniform(40, 60, 240).round(4), rng.uniform(-10, 20, 240).round(4)
    return frame


OTHER_MODALITIES = ["review", "signed_up", "store_lat", "store_lon"]


@pytest.fixture(scope="module")
def fitted(table):
    """Models of numeric and categorical columns, and of those plus text (TF-IDF), a date and a location;
    k-means and a Gaussian mixture (soft memberships)."""
    settings = {"k": [3], "algorithms": ["kmeans", "gmm"], "seed": 0}
    return {"numeric+categorical": clusterflow.Clustering(**settings).fit(table.drop(columns=OTHER_MODALITIES)),
            "with text, dates and places": clusterflow.Clustering(**settings, text_featurizer="tfidf").fit(table)}


def served(model, model_id="kmeans-k3") -> ServedModel:
    return ServedModel(model, f"runs/r/models/{model_id}")


def as_records(frame: pd.DataFrame) -> list[dict]:
    return orjson.loads(orjson.dumps(frame.replace({np.nan: None}).to_dict("records")))  # as a request arrives


EDGE_ROWS = [  # each with its own customer_id; every other column as the table has it
    {"channel": "kiosk"},  # a level unseen at fit time
    {"channel": None, "plan": "NA"},  # missing, and a missing token
    {"channel": " N/A"},  # a missing token: the level "(missing)", which channel has (some were missing at fit)
    {"plan": " basic "},  # not "basic": labels are matched as written
    {"income_k": None, "age": "41.5", "visits_per_month": "yes"},  # missing number; number and boolean as strings
    {"tenure_months": True, "basket_value": 0},
    {"review": None, "signed_up": None},
    {"review": "", "store_lat": None, "store_lon": None},
    {"signed_up": "2025-02-30"},  # not a date: missing, as one of many rows (below 5% of the request)
]


def edge_records(table: pd.DataFrame) -> list[dict]:
    base = as_records(table.head(len(EDGE_ROWS)))
    return [dict(record, **change, customer_id=f"E{i}") for i, (record, change) in enumerate(zip(base, EDGE_ROWS))]


def expected_of(model, records: list[dict]) -> tuple[list, np.ndarray]:
    """The model's own clusters and memberships for ``records`` as a table (what `clusterflow predict` reads)."""
    frame = pd.DataFrame.from_records(records)
    return model.predict(frame).tolist(), model.predict_proba(frame)


@pytest.mark.parametrize("kind", ["numeric+categorical", "with text, dates and places"])
def test_every_request_of_a_batch_gets_the_models_own_answer(fitted, table, kind):
    clustering = fitted[kind]
    columns = [c for c in table.columns if kind != "numeric+categorical" or c not in OTHER_MODALITIES]
    requests = [as_records(table[columns].iloc[i:i + size]) for i, size in ((0, 1), (1, 40), (41, 1), (42, 3))]
    requests += [[{k: v for k, v in r.items() if k in columns} for r in edge_records(table) + requests[1]]]
    requests += [[dict(requests[0][0], channel=3, customer_id="N0")]]  # a label as a number: the frame's path
    for model_id, model in clustering.models_.items():
        service = served(model, model_id)
        for batch in (requests, requests[:-1]):  # with and without a value the categorical reader declines
            results = assign_batch(service, [record_rows(records, service.expected) for records in batch])
            check_answers(model, model_id, batch, results)


def check_answers(model, model_id: str, requests: list[list[dict]], results: list) -> None:
    for records, result in zip(requests, results):
        clusters, proba = expected_of(model, records)
        assert [row["customer_id"] for row in result] == [r["customer_id"] for r in records]
        assert [row["cluster"] for row in result] == clusters, (model_id, records)
        served_proba = [[row["probabilities"][str(c)] for c in model.clusters_] for row in result]
        np.testing.assert_allclose(served_proba, proba, atol=5e-7)


def test_numeric_and_categorical_blocks_read_values_and_the_others_fall_back(fitted):
    numeric_categorical = served(fitted["numeric+categorical"].best_model_)
    assert numeric_categorical.inline and numeric_categorical.features.fast
    mixed = served(fitted["with text, dates and places"].best_model_)
    readers = {block.columns[0]: block.reader is not None for block in mixed.features.blocks}
    assert readers == {"age": True, "channel": True, "review": False, "signed_up": False, "store_lat": False}
    assert not mixed.inline


def test_bad_records_fail_their_own_request_naming_column_rows_and_rule(fitted, table):
    service = served(fitted["numeric+categorical"].best_model_)
    good = as_records(table.drop(columns="review").head(3))
    bad = [dict(good[0], customer_id="B0"), dict(good[1], income_k="a lot", customer_id="B1"),
           dict(good[2], age="old", income_k="lots", customer_id="B2")]
    results = assign_batch(service, [record_rows(r, service.expected) for r in (good, bad, good[:1])])
    assert isinstance(results[0], list) and isinstance(results[2], list) and len(results[0]) == 3
    problems = {(p.column, p.rule, p.rows) for p in results[1].problems}
    assert problems == {("income_k", "values are not numbers", (1, 2)), ("age", "values are not numbers", (2,))}

    for records, column, rule in (
            ([{k: v for k, v in good[0].items() if k != "age"}], "age", "column is missing"),
            ([dict(good[0], channel={"nested": 1})], "channel", "values are not strings, numbers or booleans (or null)"),
            ([good[0], dict(good[1], customer_id=good[0]["customer_id"])], "customer_id", "id values repeat")):
        assert [(p.column, p.rule) for p in record_rows(records, service.expected).problems] == [(column, rule)]
    shape_and_value = [dict(good[0], channel=["app"]), dict(good[1], income_k="a lot")]  # one report of both
    (failed,) = assign_batch(service, [record_rows(shape_and_value, service.expected)])
    assert {(p.column, p.rows) for p in failed.problems} == {("channel", (0,)), ("income_k", (1,))}

    mixed = served(fitted["with text, dates and places"].best_model_)
    good = as_records(table.head(2))
    requests = [[dict(good[0], signed_up="someday")], [dict(good[0], store_lat=123.0), dict(good[1], store_lon="east")],
                good]
    results = assign_batch(mixed, [record_rows(r, mixed.expected) for r in requests])
    assert [(p.column, p.rows) for p in results[0].problems] == [("signed_up", (0,))]  # the whole column is checked
    assert {(p.column, p.rows) for p in results[1].problems} == {("store_lat", (0,)), ("store_lon", (1,))}
    assert len(results[2]) == 2

    for body in (b"{oops", b"[]", b"[1, 2]", b'"text"'):
        with pytest.raises(InputValidationError):
            read_records(body)
    assert read_records(orjson.dumps(good[0])) == [good[0]]
