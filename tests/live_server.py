"""Real processes for tests: ``manage.py`` commands (a server, a cluster, the
scan agent) on the test database of this run, the same SQLite file or
PostgreSQL database the test sees."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import requests
from django.db import connection

from approvals.knox.launcher import free_port

__all__ = [
    "database_url",
    "free_port",
    "start_manage",
    "stop_process",
    "subprocess_env",
    "wait_for_http",
    "wait_until",
]

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": database_url(),
        **extra,
    }


def start_manage(*args: str, log: Path | None = None, **env: str) -> subprocess.Popen:
    """Start ``manage.py *args``. Its output goes to ``log`` (a temporary file
    when not given), never to a pipe: a chatty server would block once a pipe
    nobody reads is full. ``stop_process`` returns what it wrote."""
    if log is None:
        handle, name = tempfile.mkstemp(prefix="bureau-test-", suffix=".log")
        os.close(handle)
        log = Path(name)
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=subprocess_env(**env),
            stdout=output,
            stderr=subprocess.STDOUT,
            # Its own session: stopping it also stops what it forked (a
            # qcluster's workers), even when the test failed half-way.
            start_new_session=True,
        )
    process.log_path = log
    return process


def stop_process(process: subprocess.Popen) -> str:
    """SIGTERM to the process (it stops its children in order); after 30 s,
    SIGKILL to it and everything it started. Returns its output."""
    if process.poll() is None:
        process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):  # children left behind, or a hang
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    log = getattr(process, "log_path", None)
    return log.read_text(errors="replace") if log is not None and log.exists() else ""


def wait_for_http(url: str, *, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    stop_process(process)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def wait_until(predicate, timeout: float, interval: float = 0.2, process=None) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes (or ``process`` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return bool(predicate())
        if predicate():
            return True
        time.sleep(interval)
    return False
