"""The Knox simulator as a separate process, for the tests and the benchmarks
(``make run`` starts it through ``run_bureau``). One launcher, so both meet
the same simulator the same way: a real ``manage.py knox_simulator`` on a free
loopback port, its test endpoints (``/sim/…``) wrapped in methods."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Simulator:
    """A running simulator: its URL, its process, and its test endpoints."""

    def __init__(self, url: str, process: subprocess.Popen, data_file: Path):
        self.url = url
        self.process = process
        self.data_file = data_file

    def reset(self) -> None:
        requests.post(f"{self.url}/sim/reset", json={}, timeout=5).raise_for_status()

    def faults(self, **faults) -> None:
        requests.post(f"{self.url}/sim/faults", json=faults, timeout=5).raise_for_status()

    def decide(
        self, ap_inf_id: str, status: int, opinion: str = "", delegate_ep_id: str | None = None
    ) -> None:
        """Decide a document; ``delegate_ep_id`` with status 5 approves it by delegation."""
        body = {"status": status, "opinion": opinion}
        if delegate_ep_id:
            body["delegateEpId"] = delegate_ep_id
        requests.post(
            f"{self.url}/sim/documents/{ap_inf_id}/decide", json=body, timeout=5
        ).raise_for_status()

    def add(self, *documents: dict) -> None:
        requests.post(
            f"{self.url}/sim/documents/bulk", json={"documents": list(documents)}, timeout=5
        ).raise_for_status()

    def document(self, ap_inf_id: str) -> dict | None:
        response = requests.get(f"{self.url}/sim/documents/{ap_inf_id}", timeout=5)
        return response.json() if response.status_code == 200 else None

    def calls(self) -> dict:
        return requests.get(f"{self.url}/sim/stats", timeout=5).json()["calls"]

    def max_concurrent_calls(self) -> int:
        """The most API calls it answered at once since the last reset."""
        return requests.get(f"{self.url}/sim/stats", timeout=5).json()["max_concurrent_calls"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_simulator(data_file: Path, *extra: str, timeout: float = 20) -> Simulator:
    """Start ``manage.py knox_simulator`` keeping its documents in
    ``data_file`` (``extra``: more of its arguments) and wait until it answers."""
    port = free_port()
    # Its output goes to a file beside its documents: a pipe nobody reads would
    # block a chatty simulator once full.
    log = data_file.with_name(f"{data_file.stem}.log")
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "knox_simulator",
                "--port",
                str(port),
                "--data-file",
                str(data_file),
                *extra,
            ],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"knox_simulator exited: {log.read_text()[-2000:]}")
        try:
            requests.get(f"{url}/sim/health", timeout=0.5)
            return Simulator(url, process, data_file)
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"knox_simulator did not start within {timeout:.0f}s")


def stop_simulator(simulator: Simulator) -> None:
    simulator.stop()
