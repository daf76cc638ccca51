"""Processes started by these tests, each in its own session, so that
stopping one also stops what it forked (a qcluster's workers), even when
the test failed half-way."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.scanning.conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[2]


def start_manage(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=subprocess_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop_process_group(process: subprocess.Popen) -> str:
    """SIGTERM to the process (it stops its children in order); after 30 s,
    SIGKILL to it and everything it started."""
    if process.poll() is None:
        process.terminate()
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        output = None
    with contextlib.suppress(ProcessLookupError):  # children left behind, or a hang
        os.killpg(process.pid, signal.SIGKILL)
    if output is None:
        output, _ = process.communicate(timeout=10)
    return output or ""
