"""``make run`` stays up (issue 12, item 6): ``run_bureau`` for real, with its
web server, cluster, Knox simulator and scan agent as processes. The helpers
are killed; the runner says so, starts them again after a backoff, and the web
server and the cluster are never touched."""

from __future__ import annotations

import os
import re
import signal

import pytest
import requests

from tests.live_server import free_port, start_manage, stop_process, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _pids(output: str, verb: str) -> dict[str, int]:
    """The last pid the runner reported per process for ``verb`` (started/restarted)."""
    return {
        name: int(pid) for name, pid in re.findall(rf"^{verb} (\S+) \(pid (\d+)\)", output, re.M)
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_make_run_restarts_the_agent_and_the_simulator_and_keeps_web_and_tasks(tmp_path):
    # given: the runner up, with every process it starts
    port, knox_port = free_port(), free_port()
    runner = start_manage(
        "run_bureau",
        "--port", str(port),
        PYTHONUNBUFFERED="1",
        BUREAU_VAR_DIR=str(tmp_path),
        KNOX_BASE_URL=f"http://127.0.0.1:{knox_port}",
        SCANNING_AGENT_TOKEN_FILE=str(tmp_path / "agent.token"),
    )  # fmt: skip
    output = lambda: runner.log_path.read_text(errors="replace")  # noqa: E731
    try:
        assert wait_until(lambda: "Bureau is up" in output(), timeout=60, process=runner), output()
        started = _pids(output(), "started")
        assert set(started) == {"web", "tasks", "knox", "scan-agent"}, output()
        assert wait_until(lambda: _healthz(port) == 200, timeout=30), output()

        # when: the agent and the simulator die
        os.kill(started["scan-agent"], signal.SIGKILL)
        os.kill(started["knox"], signal.SIGKILL)

        # then: both are started again after the first backoff, and the log says so
        assert wait_until(
            lambda: set(_pids(output(), "restarted")) == {"scan-agent", "knox"}, timeout=30
        ), output()
        restarted = _pids(output(), "restarted")
        for name in ("scan-agent", "knox"):
            assert f"{name} exited with -9; restarting it in 1 s" in output()
            assert restarted[name] != started[name] and _alive(restarted[name])
        assert wait_until(lambda: _knox_health(knox_port) == 200, timeout=30), output()
        # and the web server and the cluster kept running, untouched
        assert runner.poll() is None
        assert _alive(started["web"]) and _alive(started["tasks"])
        assert _healthz(port) == 200
        assert "stopping the rest" not in output()
    finally:
        final = stop_process(runner)
        print(final[-5000:])  # shown by pytest when the test failed
    assert "Bureau stopped." in final


def _healthz(port: int) -> int | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
    except requests.RequestException:
        return None


def _knox_health(port: int) -> int | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/sim/health", timeout=2).status_code
    except requests.RequestException:
        return None
