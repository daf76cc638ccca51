import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from approvals.models import ApprovalTemplate
from approvals.services import knox_profile_set
from operations.choices import MemberRole
from tests.operations.factories import MembershipFactory, UserFactory, WorkspaceFactory

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Simulator:
    """The Knox simulator as a real process, and its test endpoints."""

    def __init__(self, url: str, process: subprocess.Popen, data_file: Path):
        self.url = url
        self.process = process
        self.data_file = data_file

    def reset(self) -> None:
        requests.post(f"{self.url}/sim/reset", json={}, timeout=5).raise_for_status()

    def faults(self, **faults) -> None:
        requests.post(f"{self.url}/sim/faults", json=faults, timeout=5).raise_for_status()

    def decide(self, ap_inf_id: str, status: int, opinion: str = "") -> None:
        requests.post(
            f"{self.url}/sim/documents/{ap_inf_id}/decide",
            json={"status": status, "opinion": opinion},
            timeout=5,
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


def start_simulator(data_file: Path, *extra: str) -> Simulator:
    port = _free_port()
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
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"knox_simulator exited: {process.stdout.read()}")
        try:
            requests.get(f"{url}/sim/health", timeout=0.5)
            return Simulator(url, process, data_file)
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("knox_simulator did not start within 20s")


def stop_simulator(simulator: Simulator) -> None:
    simulator.process.terminate()
    try:
        simulator.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        simulator.process.kill()


@pytest.fixture(scope="session")
def _simulator_process(tmp_path_factory):
    simulator = start_simulator(tmp_path_factory.mktemp("knox") / "documents.json")
    yield simulator
    stop_simulator(simulator)


@pytest.fixture
def knox(_simulator_process, settings) -> Simulator:
    """A clean simulator, and Bureau pointed at it with short timeouts."""
    _simulator_process.reset()
    settings.KNOX_BASE_URL = _simulator_process.url
    settings.KNOX_READ_TIMEOUT = 1.0
    settings.KNOX_STATUS_RETRIES = 0
    settings.KNOX_SUBMIT_GRACE_SECONDS = 0
    return _simulator_process


@pytest.fixture
def demo_workspace(db):
    return WorkspaceFactory(slug="acme", name="Acme")


@pytest.fixture
def requester(demo_workspace):
    """A user with a Knox EP ID who may create tenants in ``acme`` (an operator)."""
    user = UserFactory(username="requester")
    knox_profile_set(user=user, ep_id="EP-REQ-1")
    MembershipFactory(workspace=demo_workspace, user=user, role=MemberRole.OPERATOR)
    return user


@pytest.fixture
def tenant_template(db):
    return ApprovalTemplate.objects.create(
        name="New tenant",
        content="<h2>New tenant {{tenant_name}}</h2><p>Requested for {{workspace}}.</p>",
        sample_variables={"tenant_name": "Example", "workspace": "acme"},
    )


@pytest.fixture
def request_tenant(requester, demo_workspace, tenant_template):
    """Request approval to create a tenant; returns the pending action."""
    from approvals.services import with_approval

    def request(name: str = "Initech", **overrides):
        kwargs = {
            "payload": {"workspace": demo_workspace.slug, "name": name},
            "title": f"Create tenant {name}",
            "template_name": tenant_template.name,
            "variables": {"tenant_name": name, "workspace": demo_workspace.slug},
            "approvers": ["EP-BOSS-1"],
            "user": requester,
        }
        kwargs.update(overrides)
        return with_approval("operations.create_tenant", **kwargs)

    return request
