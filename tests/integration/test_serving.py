"""`clusterflow serve-model`: the real uvicorn server in a subprocess, real HTTP requests.

Two published runs of one dataset (k=3 and k=4) under one runs root; the service is
started through the installed command, on 127.0.0.1 and a free port.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

import clusterflow
from clusterflow.promotion import promote
from clusterflow.samples import customers
from deployments.local_server import free_port, stop_process_group
from flows.cluster import cluster

CLI = str(Path(sys.executable).with_name("clusterflow"))
TRACEBACK = "Traceback (most recent call last)"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, prefect_harness, dask_address):
    """The runs root, two runs of the `customers` dataset, and the table they were trained on."""
    root = tmp_path_factory.mktemp("serving")
    table = customers(300, seed=5).drop(columns="segment")
    data = root / "customers.csv"
    table.to_csv(data, index=False)
    published = [cluster(data=str(data), out=str(root / f"run-k{k}"), k=[k], algorithms=["kmeans"],
                         dask_address=dask_address) for k in (3, 4)]
    return root, published, table


@contextmanager
def serving(*args: str, env: dict | None = None):
    """`clusterflow serve-model ARGS` on a free port; yields (base URL, the process's log path)."""
    port = free_port()
    log_path = Path(os.environ["PREFECT_HOME"]) / f"serve-model-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([CLI, "serve-model", *args, "--port", str(port)], stdout=log,
                                   stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                   start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                assert process.poll() is None, log_path.read_text()[-3000:]
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.3)
            yield url, log_path
        finally:
            stop_process_group(process)


def test_predict_matches_the_published_model_and_bad_records_are_422(runs):
    root, published, table = runs
    model = clusterflow.load_model(published[1])
    records = table.head(25).replace({np.nan: None}).to_dict("records")
    with serving(published[1], env={"CLUSTERFLOW_SERVE_TOKEN": "s3cret"}) as (url, log_path), \
            httpx.Client(base_url=url, headers={"Authorization": "Bearer s3cret"}) as client:
        assert httpx.post(f"{url}/predict", json=records).status_code == 401
        assert httpx.get(f"{url}/model", headers={"Authorization": "Bearer wrong"}).status_code == 401
        info = client.get("/model").json()
        assert info["run"] == published[1] and info["model"] == "kmeans-k4" and info["clusters"] == [0, 1, 2, 3]
        assert info["schema"]["age"] == "numeric" and info["schema"]["channel"] == "categorical"

        many = client.post("/predict", json=records).json()
        one = client.post("/predict", json=records[0]).json()
        expected = model.assign(table.head(25))
        assert [p["customer_id"] for p in many["predictions"]] == expected["customer_id"].tolist()
        assert [p["cluster"] for p in many["predictions"]] == expected["cluster"].tolist()
        served_p = np.array([[p["probabilities"][str(c)] for c in info["clusters"]] for p in many["predictions"]])
        np.testing.assert_allclose(served_p, expected[[f"p_{c}" for c in info["clusters"]]], atol=1e-5)
        assert one["predictions"] == many["predictions"][:1] and one["model"] == "kmeans-k4"

        without_age = [{k: v for k, v in r.items() if k != "age"} for r in records[:2]]
        wrong_types = [dict(records[0], income_k="a lot"), dict(records[1], channel={"nested": 1})]
        for body, column in ((without_age, "age"), (wrong_types, "income_k"), (wrong_types, "channel")):
            response = client.post("/predict", json=body)
            assert response.status_code == 422, response.text
            assert column in {p["column"] for p in response.json()["detail"]}
        assert client.post("/predict", json=[]).status_code == 422
        assert client.post("/predict", content=b"{oops", headers={"content-type": "application/json"}
                           ).status_code == 422
        assert httpx.get(f"{url}/health").status_code == 200  # open to probes without the token
    assert TRACEBACK not in log_path.read_text()


def test_a_promotion_swaps_the_model_without_failing_a_request(runs):
    root, published, table = runs
    promote(published[0], "kmeans-k3", runs_root=str(root), dataset="customers")
    records = table.head(5).replace({np.nan: None}).to_dict("records")
    with serving("--dataset", "customers", "--runs-root", str(root), "--poll-seconds", "0.2") as (url, log_path):
        assert httpx.get(f"{url}/model").json()["model"] == "kmeans-k3"
        answers, stop = [], threading.Event()

        def keep_asking():
            with httpx.Client(base_url=url, timeout=30) as client:
                while not stop.is_set():
                    response = client.post("/predict", json=records)
                    answers.append((response.status_code, response.json().get("model")))

        clients = [threading.Thread(target=keep_asking) for _ in range(3)]
        for thread in clients:
            thread.start()
        time.sleep(1)
        promotion = promote(published[1], "kmeans-k4", runs_root=str(root), dataset="customers")
        deadline = time.monotonic() + 30
        while not answers or answers[-1][1] != "kmeans-k4":
            assert time.monotonic() < deadline, answers[-5:]
            time.sleep(0.2)
        time.sleep(0.5)
        stop.set()
        for thread in clients:
            thread.join()
        info = httpx.get(f"{url}/model").json()
    assert {status for status, _ in answers} == {200}
    models = [model for _, model in answers]
    assert models[0] == "kmeans-k3" and models[-1] == "kmeans-k4"
    assert info["model"] == "kmeans-k4" and info["promoted_at"] == promotion.promoted_at
    assert info["dataset"] == "customers"
    assert TRACEBACK not in log_path.read_text()


def test_serve_model_mistakes_are_clear_errors(runs, tmp_path):
    root, _, _ = runs
    mistakes = ((["--runs-root", str(root)], "needs a model or --dataset"),
                ([str(tmp_path / "no-such-run")], "no model at"))
    with ThreadPoolExecutor(max_workers=len(mistakes)) as pool:  # each is mostly the command's start-up
        finished = list(pool.map(lambda args: subprocess.run([CLI, "serve-model", *args], capture_output=True,
                                                             text=True, timeout=120), (a for a, _ in mistakes)))
    for done, (_, message) in zip(finished, mistakes):
        assert done.returncode in (1, 2), done.stderr
        assert message in done.stderr and TRACEBACK not in done.stdout + done.stderr
