"""A local Prefect server in a subprocess, for tests and benchmarks that need a real one.

    with local_prefect_server(Path("/tmp/home")) as server:
        subprocess.run(["clusterflow", "serve"], env=server.client_env)
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx


@dataclass(frozen=True)
class LocalServer:
    """A running server: its API URL, its home, and the environment for clients of it."""

    api: str
    home: Path
    client_env: dict[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a subprocess started with ``start_new_session=True`` and everything it started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def is_healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def local_prefect_server(home: Path, timeout: float = 120) -> Iterator[LocalServer]:
    """`prefect server start` on 127.0.0.1 and a free port, with its own home and SQLite database.

    Waits until ``/api/health`` answers (about 20 s here); the server's output goes to
    ``home/server.log``, whose tail is in the error if it exits or does not answer in time.
    """
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    api = f"http://127.0.0.1:{port}/api"
    with open(home / "server.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                    "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while not is_healthy(api):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = (home / "server.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"the Prefect server did not answer {api}/health:\n{tail}")
                time.sleep(0.5)
            yield LocalServer(api, home, {**env, "PREFECT_API_URL": api})
        finally:
            stop_process_group(process)
