"""What `clusterflow run` starts listens on loopback only, and dies with the command."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

CLUSTERFLOW = str(Path(sys.executable).with_name("clusterflow"))
LOOPBACK = {"127.0.0.1", "::1"}


def _listeners(process: psutil.Process) -> set[tuple[str, int]]:
    found = set()
    for member in [process, *process.children(recursive=True)]:
        try:
            found |= {(c.laddr.ip, c.laddr.port) for c in member.net_connections(kind="inet")
                      if c.status == psutil.CONN_LISTEN}
        except psutil.NoSuchProcess:
            continue
    return found


def _servers(process: psutil.Process) -> list[psutil.Process]:
    return [child for child in process.children(recursive=True) if "uvicorn" in " ".join(child.cmdline())]


def test_a_killed_run_leaves_no_server_and_nothing_listened_beyond_loopback(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "table.csv"
    pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300),
                  "kind": rng.choice(["a", "b"], 300)}).to_csv(data, index=False)
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        command = subprocess.Popen([CLUSTERFLOW, "run", str(data), "--k", "3", "--out", str(tmp_path / "run")],
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
    process = psutil.Process(command.pid)
    listeners, servers = set(), []
    deadline = time.monotonic() + 240
    try:
        while "Beginning flow run" not in log.read_text() and command.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            servers = _servers(process) or servers
            listeners |= _listeners(process)
            time.sleep(0.1)
        listeners |= _listeners(process)
        assert servers, "no temporary Prefect server was started"
        assert listeners and {ip for ip, _ in listeners} <= LOOPBACK, listeners
    finally:
        command.send_signal(signal.SIGKILL)
        command.wait(timeout=30)
    gone, alive = psutil.wait_procs(servers, timeout=30)
    assert not alive, f"still running after the command was killed: {[p.cmdline() for p in alive]}"
