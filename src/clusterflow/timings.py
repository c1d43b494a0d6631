"""One-off costs of this process (interpreter and imports, servers it started), reported by the next run.

The command line records them where they happen; the next run's manifest reports them in
its ``timings_seconds`` (each once: a long-lived process pays them once).
"""
from __future__ import annotations

import time

_STARTUP: dict[str, float] = {}


def record_startup(name: str, seconds: float) -> None:
    _STARTUP[name] = round(seconds, 3)


def take_startup_costs() -> dict[str, float]:
    """The recorded costs, forgotten once taken."""
    costs = dict(_STARTUP)
    _STARTUP.clear()
    return costs


def seconds_since_process_start() -> float:
    """Wall seconds since this process started (the interpreter's start-up and imports included)."""
    import psutil

    return time.time() - psutil.Process().create_time()
