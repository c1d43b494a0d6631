"""Shared fixtures: one Prefect test harness, one Prefect server, one Dask cluster and one S3 server per session.

Everything is real and local: Prefect's own test harness (a temporary home and
database), a Dask LocalCluster of worker processes, and moto's S3 server on 127.0.0.1.

Tests under ``tests/unit/`` exercise the core library alone (no Prefect, no Dask cluster, no
subprocess); everything under ``tests/integration/`` is marked ``integration``, so
``pytest -m "not integration"`` runs the fast half.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before Prefect is imported anywhere: never touch the user's own Prefect home or settings.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="clusterflow-prefect-")
os.environ.pop("PREFECT_API_URL", None)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CLUSTERFLOW_ONNX_CACHE", tempfile.mkdtemp(prefix="clusterflow-onnx-"))  # one export per session

INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items):
    """Mark every test under tests/integration/ as `integration` (flows, CLI, servers)."""
    for item in items:
        if INTEGRATION in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def prefect_harness():
    """A session-wide Prefect test harness (temporary database, heartbeats off)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120), \
            temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One `prefect server start` on 127.0.0.1 for every test that runs the CLI or serves deployments
    as subprocesses (so no command pays for a temporary server). Yields a LocalServer."""
    from deployments.local_server import local_prefect_server

    with local_prefect_server(tmp_path_factory.mktemp("prefect-server-home")) as server:
        yield server


@pytest.fixture(scope="session")
def dask_address(s3_server):
    """The address of a session-wide Dask LocalCluster with two worker processes.

    Started after the S3 server, so its worker processes inherit the S3 endpoint and keys.
    """
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1; sets the AWS environment so s3fs and pandas use it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1")
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh bucket on the S3 server; yields its name."""
    import uuid

    import s3fs

    name = f"test-{uuid.uuid4().hex[:10]}"
    fs = s3fs.S3FileSystem(endpoint_url=s3_server)
    fs.mkdir(name)
    s3fs.S3FileSystem.clear_instance_cache()
    yield name


@pytest.fixture
def customers_csv(tmp_path):
    """The demo customer table (no labels) as CSV, and its planted segments by customer id."""
    from clusterflow.samples import customers

    table = customers(600, seed=3)
    path = tmp_path / "customers.csv"
    table.drop(columns="segment").to_csv(path, index=False)
    return str(path), table.set_index("customer_id")["segment"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The demo's multimodal table (photos written beside it) and its folder."""
    from clusterflow.samples import multimodal_customers

    folder = tmp_path_factory.mktemp("shop")
    return multimodal_customers(700, str(folder), seed=21), folder
