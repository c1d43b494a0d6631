"""Operating clusterflow: deployments served against a real Prefect server, event-triggered
reclustering with stable cluster ids, promotion, and the predict deployment.

The server (`prefect server start`) and `clusterflow serve` run as subprocesses with their
own Prefect home; this process talks to them over HTTP and through the `clusterflow` CLI,
so no Prefect setting of this process points at them.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

import clusterflow
from clusterflow.promotion import read_promoted
from clusterflow.samples import customers
from clusterflow.run_folder import RunFolder
from deployments.local_server import stop_process_group

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("clusterflow"))
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
RETRIED_STATUSES = {429, 502, 503}  # a busy SQLite-backed server answers 503 to a write it could not make in time


# ---------------------------------------------------------------- prefect.yaml == served deployments

def test_prefect_yaml_declares_what_serve_serves():
    from deployments.serving import build_deployments

    declared = {d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
    served = {d.name: d for d in build_deployments(runs_root="R", nightly_data="N")}
    assert set(declared) == set(served) == {"cluster-nightly", "recluster-on-new-data", "predict"}
    for name, spec in declared.items():
        deployment = served[name]
        assert spec["entrypoint"] == deployment.entrypoint
        assert spec["tags"] == deployment.tags
        assert set(spec["parameters"]) <= set(deployment.parameters)
        assert spec["work_pool"]["name"] == "clusterflow"
    assert declared["cluster-nightly"]["schedules"] == [{"cron": served["cluster-nightly"].schedules[0].schedule.cron,
                                                         "timezone": "UTC"}]
    (trigger,) = declared["recluster-on-new-data"]["triggers"]
    (served_trigger,) = served["recluster-on-new-data"].triggers
    assert set(trigger["expect"]) == served_trigger.expect
    assert trigger["match"] == served_trigger.match.model_dump()
    assert trigger["parameters"] == served_trigger.parameters
    assert all("| default(" in template for template in trigger["parameters"].values())
    limit = declared["recluster-on-new-data"]["concurrency_limit"]
    served_recluster = served["recluster-on-new-data"]
    assert (limit["limit"], limit["collision_strategy"]) == (
        served_recluster.concurrency_limit, served_recluster.concurrency_options.collision_strategy.value)


# ---------------------------------------------------------------- a real server

@pytest.fixture(scope="module")
def server(prefect_server):
    """The session's `prefect server start` (a free port, its own home and SQLite database)."""
    return {"api": prefect_server.api, "env": prefect_server.client_env, "home": prefect_server.home}


@pytest.fixture(scope="module")
def served(server, tmp_path_factory, dask_address):
    """`clusterflow serve` against the server, every run computing on the session's Dask cluster."""
    runs_root = tmp_path_factory.mktemp("runs-root")
    nightly = tmp_path_factory.mktemp("nightly") / "nightly.csv"
    env = {**server["env"], "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    log = open(server["home"] / "serve.log", "wb")
    process = subprocess.Popen([CLI, "serve", "--runs-root", str(runs_root), "--nightly-data", str(nightly),
                                "--cron", "0 3 1 1 *", "--dask-address", dask_address],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = server["api"]
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (server["home"] / "serve.log").read_text()[-3000:]
            names = {d["name"] for d in _post(f"{api}/deployments/filter", {}).json()}
            automations = _post(f"{api}/automations/filter", {}).json()
            if names == {"cluster-nightly", "recluster-on-new-data", "predict"} and automations:
                break
            assert time.monotonic() < deadline, f"serve did not register its deployments: {names}"
            time.sleep(0.5)
        deployments = {d["name"]: d for d in _post(f"{api}/deployments/filter", {}).json()}
        yield {"api": api, "env": server["env"], "runs_root": str(runs_root), "deployments": deployments,
               "log": server["home"] / "serve.log"}
    finally:
        stop_process_group(process)
        log.close()


def _post(url: str, payload: dict) -> httpx.Response:
    """POST to the Prefect API, retrying a busy server's 429/502/503 as Prefect's own client does."""
    for attempt in range(6):
        response = httpx.post(url, json=payload)
        if response.status_code not in RETRIED_STATUSES:
            break
        time.sleep(0.5 * 2 ** attempt)
    response.raise_for_status()
    return response


def _notify(served, *args: str) -> float:
    """Run `clusterflow notify ...` against the server; returns the time just before it."""
    emitted = time.time()
    subprocess.run([CLI, "notify", *args], env=served["env"], check=True, capture_output=True, timeout=60)
    return emitted


def _runs_of(served, deployment: str, data: str) -> list[dict]:
    response = _post(f"{served['api']}/flow_runs/filter", {
        "flow_runs": {"deployment_id": {"any_": [served["deployments"][deployment]["id"]]}}, "sort": "START_TIME_ASC"})
    return [r for r in response.json() if r["parameters"].get("data") == data]


def _wait_for_runs(served, deployment: str, data: str, count: int = 1, timeout: float = 180) -> list[dict]:
    """Wait until ``count`` runs of ``deployment`` on ``data`` finished; fail with their logs if one did not complete."""
    deadline = time.monotonic() + timeout
    while True:
        runs = _runs_of(served, deployment, data)
        if len(runs) >= count and all(r["state_type"] in TERMINAL for r in runs):
            break
        assert time.monotonic() < deadline, (
            f"{len(runs)} run(s) of {deployment} on {data}, states {[r['state_name'] for r in runs]}\n"
            + served["log"].read_text()[-4000:])
        time.sleep(1)
    for run in runs:
        if run["state_type"] != "COMPLETED":
            logs = _post(f"{served['api']}/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}}).json()
            pytest.fail(f"run {run['name']} ended {run['state_name']}:\n" + "\n".join(l["message"] for l in logs))
    return runs


def _write(folder: Path, name: str, frame: pd.DataFrame) -> str:
    path = folder / name
    frame.to_csv(path, index=False)
    return str(path)


def _recluster_report(runs_root: str, dataset: str) -> dict:
    folder = RunFolder(read_promoted(runs_root, dataset).run_uri)
    return folder.read_json("recluster.json", folder.manifest())


@pytest.fixture(scope="module")
def customers_promoted(served, tmp_path_factory):
    """The customers table announced with every optional key; its triggered run and its table."""
    folder = tmp_path_factory.mktemp("customers")
    table = customers(900, seed=11)
    data = _write(folder, "customers.csv", table.drop(columns="segment"))
    _notify(served, data, "--k", "4", "--algorithms", "kmeans")
    (run,) = _wait_for_runs(served, "recluster-on-new-data", data)
    return run, data, table


def test_event_triggers_a_recluster_with_the_payload_as_parameters(served, customers_promoted):
    run, data, table = customers_promoted
    assert run["parameters"] == {"data": data, "dataset": None, "k": [4], "algorithms": ["kmeans"],
                                 "runs_root": served["runs_root"], "dask_address": run["parameters"]["dask_address"]}
    assert run["name"] == "recluster-customers-event"
    assert {"clusterflow", "trigger:event", "dataset:customers"} <= set(run["tags"])

    promotion = read_promoted(served["runs_root"], "customers")
    assert promotion.model_id == "kmeans-k4" and promotion.clusters == [0, 1, 2, 3]
    folder = RunFolder(promotion.run_uri)
    manifest = folder.manifest()
    assert manifest.input.uri == data and manifest.recluster.promoted is True
    assert promotion.run_uri.startswith(served["runs_root"])
    report = folder.read_json("recluster.json", manifest)
    assert report["promote"] and report["reasons"] == ["no model was promoted for this dataset yet"]
    assignments = pd.read_parquet(folder.url("assignments.parquet"))
    assert assignments["customer_id"].tolist() == table["customer_id"].tolist()


def test_event_without_optional_keys_still_runs_with_defaults(served, tmp_path):
    data = _write(tmp_path, "small-shop.csv", customers(60, seed=2).drop(columns="segment"))
    _notify(served, data)
    (run,) = _wait_for_runs(served, "recluster-on-new-data", data)
    assert (run["parameters"]["k"], run["parameters"]["algorithms"], run["parameters"]["dataset"]) == (None, None, None)
    promotion = read_promoted(served["runs_root"], "small-shop")
    assert len(RunFolder(promotion.run_uri).manifest().k_values) > 1


def test_events_for_one_dataset_run_one_at_a_time_and_keep_cluster_ids(served, tmp_path):
    data = _write(tmp_path, "stores.csv", customers(600, seed=4).drop(columns="segment"))
    _notify(served, data, "--k", "4", "--algorithms", "kmeans")
    _notify(served, data, "--k", "4", "--algorithms", "kmeans")
    first, second = _wait_for_runs(served, "recluster-on-new-data", data, count=2)
    assert first["end_time"] <= second["start_time"], "two reclusters of one dataset overlapped"

    report = _recluster_report(served["runs_root"], "stores")  # the second run compared itself with the first
    assert report["previous"]["run_uri"] != report["run_uri"]
    changes = report["changes"]
    assert sorted(map(int, changes["persisted"])) == [0, 1, 2, 3]
    assert changes["appeared"] == changes["vanished"] == [] and not changes["split"] and not changes["merged"]
    assert changes["stability"] == pytest.approx(1.0)
    assert {int(raw): stable for raw, stable in report["labels"].items()} == {0: 0, 1: 1, 2: 2, 3: 3}


def test_a_planted_new_segment_is_reported_as_appeared_and_gets_a_fresh_id(served, customers_promoted, tmp_path):
    _, _, table = customers_promoted
    rng = np.random.default_rng(5)
    n = 200
    newcomers = pd.DataFrame({
        "customer_id": [f"N{i}" for i in range(n)], "age": rng.normal(33, 3, n), "income_k": rng.normal(190, 8, n),
        "visits_per_month": rng.normal(20, 1.5, n), "basket_value": rng.normal(420, 15, n),
        "tenure_months": rng.normal(3, 1, n), "channel": "partner", "plan": "enterprise"})
    data = _write(tmp_path, "customers-december.csv",
                  pd.concat([table.drop(columns="segment"), newcomers], ignore_index=True))
    _notify(served, data, "--dataset", "customers", "--k", "5", "--algorithms", "kmeans")
    (run,) = _wait_for_runs(served, "recluster-on-new-data", data)
    assert run["parameters"]["dataset"] == "customers"

    runs = [RunFolder(p.parent.as_posix()) for p in Path(served["runs_root"]).glob("*/recluster.json")]
    (folder,) = [f for f in runs if f.manifest().input.uri == data]
    report = folder.read_json("recluster.json", folder.manifest())
    changes = report["changes"]
    assert sorted(map(int, changes["persisted"])) == [0, 1, 2, 3]
    assert changes["appeared"] == [4] and changes["vanished"] == []
    assignments = pd.read_parquet(folder.url("assignments.parquet")).set_index("customer_id")
    assert (assignments.loc[newcomers["customer_id"], "cluster"] == 4).mean() > 0.95
    assert {"p_0", "p_1", "p_2", "p_3", "p_4"} <= set(assignments.columns)
    model = clusterflow.load_model(folder.url(f"models/{report['model_id']}"))
    assert (model.assign(newcomers)["cluster"] == 4).mean() > 0.95


def test_predict_deployment_scores_with_the_promoted_model(served, customers_promoted, tmp_path):
    _, data, table = customers_promoted
    out = str(tmp_path / "scored.parquet")
    deployment = served["deployments"]["predict"]
    _post(f"{served['api']}/deployments/{deployment['id']}/create_flow_run",
          {"parameters": {"data": data, "out": out, "dataset": "customers"}})
    _wait_for_runs(served, "predict", data)
    promoted = clusterflow.load_model(read_promoted(served["runs_root"], "customers").model_uri)
    scored = pd.read_parquet(out)
    assert scored["cluster"].tolist() == promoted.assign(table.drop(columns="segment"))["cluster"].tolist()
