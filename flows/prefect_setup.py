"""How the command line sets Prefect up: its temporary server, and what its logs show on the terminal.

Without ``PREFECT_API_URL`` Prefect starts a temporary server process on the first client
call and waits for it (~10 s here). The command line starts that same server itself, as
soon as the input is checked, so it boots while the flow's modules import; and it ties the
server's life to the command's (Linux ``PR_SET_PDEATHSIG``): a killed command leaves no
orphan server behind.
"""
from __future__ import annotations

import atexit
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import httpx

PR_SET_PDEATHSIG = 1
MIN_STARTUP_WAIT = 120  # seconds


class _Ready:
    """A server that needs no waiting (a real one at ``PREFECT_API_URL``)."""

    startup_seconds = None

    def wait_until_ready(self) -> None:
        return None


def start_temporary_server():
    """Start Prefect's temporary server now, unless ``PREFECT_API_URL`` names one; returns a handle whose
    ``wait_until_ready()`` blocks until the server answers."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return _Ready()
    from prefect.server.api.server import SubprocessASGIServer

    class TiedServer(SubprocessASGIServer):
        """Prefect's temporary server, started in the background and stopped with this process."""

        startup_seconds: float | None = None  # from spawning the process to its first healthy answer

        def _run_uvicorn_command(self) -> subprocess.Popen:
            return _popen_tied_to_parent(super()._run_uvicorn_command)

        def spawn(self) -> None:
            self.port = self.find_available_port()
            self.server_process = self._run_uvicorn_command()
            self.running = True
            atexit.register(self.stop)
            self._ready = threading.Thread(target=self._wait_healthy, daemon=True, name="prefect-server-ready")
            self._error: Exception | None = None
            self._ready.start()

        def _wait_healthy(self) -> None:
            spawned = time.perf_counter()
            # Prefect's own wait counts only its sleeps, so its 20 s default lasts far longer in wall
            # time; a brand-new home (database migrations) took ~40 s here.
            deadline = time.monotonic() + max(settings.server.ephemeral.startup_timeout_seconds, MIN_STARTUP_WAIT)
            with httpx.Client() as client:
                while time.monotonic() < deadline:
                    if self.server_process.poll() is not None:
                        self._error = RuntimeError(f"Prefect's temporary server exited with code "
                                                   f"{self.server_process.returncode}")
                        return
                    try:
                        if client.get(f"{self.api_url}/health").status_code == 200:
                            self.startup_seconds = time.perf_counter() - spawned
                            return
                    except httpx.TransportError:
                        pass
                    time.sleep(0.05)
            self._error = RuntimeError("Prefect's temporary server did not answer in time "
                                       "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)")

        def wait_until_ready(self) -> None:
            self._ready.join()
            if self._error is not None:
                self.stop()
                raise self._error

    server = TiedServer()  # Prefect's clients find this same instance (one per port, None = any)
    if not server.running:
        server.spawn()
    return server


def _popen_tied_to_parent(start):
    """Call ``start`` (which runs ``subprocess.Popen``) so that the child gets SIGTERM when this process dies.

    The signal follows the *thread* that forked the child, so this must run on the main thread.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return start()
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def die_with_parent() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    original = subprocess.Popen

    def popen(*args, **kwargs):
        return original(*args, preexec_fn=die_with_parent, **kwargs)

    subprocess.Popen = popen
    try:
        return start()
    finally:
        subprocess.Popen = original


class _UserErrorWithoutTraceback(logging.Filter):
    """Drop the traceback of a user's mistake (bad input or parameters) from a terminal log line.

    Prefect logs a failed flow or task with its stack; for a user's mistake the command
    prints one clear report instead. The flow run's state and the API's logs keep it all.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from clusterflow.errors import ClusterflowError

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ClusterflowError) and error.exit_code == 2:
            record.exc_info, record.exc_text = None, None
        return True


def quiet_user_error_tracebacks() -> None:
    """Install the filter on Prefect's terminal handlers (after Prefect configured its logging);
    turn Dask's INFO chatter down."""
    import prefect.logging.configuration  # noqa: F401  (importing prefect configures logging)
    from prefect.logging.handlers import PrefectConsoleHandler

    logging.getLogger("distributed").setLevel(logging.WARNING)
    seen = set()
    for logger in [logging.getLogger(), *map(logging.getLogger, logging.root.manager.loggerDict)]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler) and id(handler) not in seen:
                seen.add(id(handler))
                handler.addFilter(_UserErrorWithoutTraceback())
