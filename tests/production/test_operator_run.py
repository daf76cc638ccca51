"""Try it as an operator would (issue 10, item 6).

The production shape on one machine: the Procfile's ``web`` role (collectstatic,
then gunicorn with config/gunicorn.conf.py, DEBUG off), two ``qcluster``
processes as two worker machines would run them, the Knox simulator and the
reference scan agent, all on one PostgreSQL. Approvals are requested and scans
created through the REST API, the agent scans through its API, the approvals
are decided on the simulator, and the cluster caught in the middle of the Knox
poll is killed with SIGKILL. Then: everything completed exactly once, and
``/metrics`` and ``/readyz`` say what happened.

Only the lease is shortened (``RUN_LEASE_SECONDS``) so the takeover takes
seconds; schedules are made due by the test, as the minute passing would.
The web role runs without the HTTPS redirect: the agent and the test talk to
it directly here, where production puts the TLS proxy in between
(tests/observability/test_production_server.py covers that part).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from approvals.choices import ActionStatus
from approvals.knox.launcher import start_simulator
from approvals.models import ApprovalTemplate, PendingAction, PendingActionTransition
from approvals.services import knox_profile_set
from operations.choices import MemberRole, RunOutcome, RunStatus
from operations.models import OperationRun, Tenant
from scanning.choices import ScanJobStatus
from scanning.models import Document, ScanJob
from scanning.services import scan_agent_create
from tests.approvals.factories import tenant_request_body
from tests.conftest import on_postgres
from tests.live_server import database_url, free_port, start_manage, stop_process, wait_until
from tests.observability.test_production_server import (
    _procfile_command,
    _production_env,
    _wait_until_it_answers,
)
from tests.operations.factories import MembershipFactory, UserFactory, WorkspaceFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not on_postgres(),
        reason="web, two clusters and an agent on one database: the production shape is "
        "PostgreSQL (SQLite is the embedded `make run` default, one process at a time)",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 5
METRICS_TOKEN = "metrics-token-for-the-operator-run-0123456"
TENANTS = ("Initech", "Umbrella", "Hooli")
SCANS = ("Invoice 2026-001", "Contract Acme")


# --- the processes ----------------------------------------------------------------------------
@pytest.fixture
def shape(tmp_path, settings):
    """Start the simulator, the web role and two clusters; stop them all at the end."""
    begun = time.monotonic()
    settings.RUN_LEASE_SECONDS = LEASE_SECONDS
    call_command("sync_schedules", verbosity=0)
    simulator = start_simulator(tmp_path / "knox.json")
    knox_env = {
        "KNOX_BASE_URL": simulator.url,
        "KNOX_SUBMIT_GRACE_SECONDS": "0",
        "KNOX_READ_TIMEOUT": "30",
    }
    port = free_port()
    web_log = tmp_path / "web.log"
    web_env = _production_env(
        DATABASE_URL=database_url(),
        # Every role signs and reads django-q2's tasks with SECRET_KEY: they share one
        # (here the clusters' and this process's, which queue tasks too).
        SECRET_KEY=settings.SECRET_KEY,
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="127.0.0.1",
        METRICS_TOKEN=METRICS_TOKEN,
        STATIC_ROOT=str(tmp_path / "static"),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),  # the clusters' (config.test_settings)
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        **knox_env,
    )
    with web_log.open("w") as output:
        web = subprocess.Popen(
            ["sh", "-c", _procfile_command("web")],
            cwd=ROOT,
            env=web_env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    web.log_path = web_log
    clusters = [
        start_manage("qcluster", Q_WORKERS="2", RUN_LEASE_SECONDS=str(LEASE_SECONDS), **knox_env)
        for _ in range(2)
    ]
    processes = {"web": web, "cluster-1": clusters[0], "cluster-2": clusters[1]}
    try:
        _wait_until_it_answers(web, f"http://127.0.0.1:{port}/healthz", log_path=web_log)
        _phase(begun, "web role answers")
        yield {
            "url": f"http://127.0.0.1:{port}",
            "simulator": simulator,
            "clusters": clusters,
            "processes": processes,
        }
    finally:
        for name, process in processes.items():
            print(f"--- {name} ---\n{stop_process(process)[-3000:]}")  # shown when a test failed
        simulator.stop()


def _poll_knox_now() -> None:
    """Queue the Knox poll, as its schedule does every minute (a cluster's
    scheduler looks at schedules only every 30 s: queueing the task itself is
    what the schedule would do, without the wait)."""
    schedule = Schedule.objects.get(name="bureau:approvals.poll_knox")
    async_task(schedule.func, q_options={"group": schedule.name})


def _phase(started: float, what: str) -> None:
    print(f"{time.monotonic() - started:6.1f} s  {what}")


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # gone meanwhile
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                pids.append(int(entry))
    return pids


def _calling(port: int, process: subprocess.Popen) -> bool:
    """Does ``process`` (or a worker it forked) have a connection open to ``port``?
    The simulator closes every connection after its answer (HTTP/1.0), so an
    open one is a call in flight."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            columns = line.split()
            if columns[3] == "01" and int(columns[2].rsplit(":", 1)[1], 16) == port:
                sockets.add(f"socket:[{columns[9]}]")
    for pid in _group_pids(process.pid):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in sockets for fd in fds):
                return True
        except OSError:
            continue
    return False


# --- the operator's data ----------------------------------------------------------------------
@pytest.fixture
def operator():
    """An operator of the ``acme`` workspace with a Knox EP ID, who also runs the
    scanner; an API token, as a program or a script would use."""
    workspace = WorkspaceFactory(slug="acme", name="Acme")
    user = UserFactory(username="operator")
    knox_profile_set(user=user, ep_id="EP-OPERATOR-1")
    MembershipFactory(workspace=workspace, user=user, role=MemberRole.OPERATOR)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["operate_scanner", "view_document"])
    )
    ApprovalTemplate.objects.create(
        name="New tenant",
        content="<h2>New tenant {{tenant_name}}</h2><p>Requested for {{workspace}}.</p>",
        sample_variables={"tenant_name": "Example", "workspace": "acme"},
    )
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


def _metrics(base: str) -> dict[tuple[str, frozenset], float]:
    response = requests.get(
        f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _metric(metrics, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


# --- the run ----------------------------------------------------------------------------------
def test_an_operator_runs_approvals_and_scans_and_a_cluster_dies(shape, operator):
    base, simulator = shape["url"], shape["simulator"]
    api = f"{base}/api/v1"
    started = time.monotonic()

    # given: the scan agent running on its host, against the web role
    agent = scan_agent_create(name="scanner-host")
    scan_agent = start_manage(
        "scan_agent",
        "--server", base,
        "--token", agent.token,
        "--batches", "2",
        "--pages", "2",
        "--poll-interval", "0.2",
        "--heartbeat-interval", "1",
        "--max-jobs", str(len(SCANS)),
    )  # fmt: skip
    shape["processes"]["scan-agent"] = scan_agent
    _phase(started, "scan agent started")

    # when: approvals are requested through the API
    for name in TENANTS:
        response = requests.post(
            f"{api}/approvals/requests/",
            json=tenant_request_body(name=name),
            headers=operator,
            timeout=30,
        )
        assert response.status_code == 201, response.text
    # and scans are created and queued through the API; the agent scans them one
    # after the other (one job holds the scanner until it is committed), a
    # cluster assembles each, and the operator commits each preview
    jobs = []
    for title in SCANS:
        response = requests.post(
            f"{api}/scanning/jobs/", json={"title": title}, headers=operator, timeout=30
        )
        assert response.status_code == 201, response.text
        jobs.append(response.json()["id"])
        queued = requests.post(
            f"{api}/scanning/jobs/{jobs[-1]}/queue/", headers=operator, timeout=30
        )
        assert queued.status_code == 200, queued.text
    for job_id in jobs:
        assert wait_until(
            lambda job_id=job_id: _job_status(api, operator, job_id) == ScanJobStatus.PREVIEW,
            timeout=60,
            interval=0.5,
        ), f"job {job_id} is {_job_status(api, operator, job_id)}"
        commit = requests.post(
            f"{api}/scanning/jobs/{job_id}/commit/", json={}, headers=operator, timeout=30
        )
        assert commit.status_code == 200, commit.text
        _phase(started, f"scan job {job_id} committed")
    # and the approver approves every document on the simulator, while Knox is slow
    actions = list(PendingAction.objects.order_by("pk"))
    assert [a.status for a in actions] == [ActionStatus.PENDING] * len(TENANTS)
    for action in actions:
        simulator.decide(action.ap_inf_id, 2, "approved by the operator run")
    simulator.faults(latency=4)
    # and the cluster caught in the middle of the Knox poll is killed
    knox_port = int(simulator.url.rsplit(":", 1)[1])
    polling: list[subprocess.Popen] = []

    def a_cluster_calls_knox() -> bool:
        polling[:] = [c for c in shape["clusters"] if _calling(knox_port, c)]
        return bool(polling)

    _poll_knox_now()
    assert wait_until(a_cluster_calls_knox, timeout=60, interval=0.05), "no cluster polled Knox"
    victim = polling[0]
    (survivor,) = [c for c in shape["clusters"] if c is not victim]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    killed_at, killed_at_wall = time.monotonic(), timezone.now()
    _phase(started, "cluster killed in the Knox poll")
    assert not PendingAction.objects.filter(status=ActionStatus.EXECUTED).exists()
    simulator.faults(latency=0)

    # then: the other cluster takes the poll over once the lease ran out, and
    # every approved action is executed
    def all_executed() -> bool:
        _poll_knox_now()
        return PendingAction.objects.filter(status=ActionStatus.EXECUTED).count() == len(TENANTS)

    assert wait_until(all_executed, timeout=90, interval=1, process=survivor), [
        (a.pk, a.status) for a in PendingAction.objects.all()
    ]
    print(f"Knox poll taken over {time.monotonic() - killed_at:.1f} s after the kill")
    assert survivor.poll() is None

    # exactly once: one tenant per approval, one execution each, one document per scan
    assert sorted(Tenant.objects.filter(workspace__slug="acme").values_list("name", flat=True)) == (
        sorted(TENANTS)
    )
    executed = PendingActionTransition.objects.filter(to_status=ActionStatus.EXECUTED)
    assert sorted(executed.values_list("pending_action_id", flat=True)) == [a.pk for a in actions]
    assert Document.objects.count() == len(SCANS)
    for job_id in jobs:
        job = ScanJob.objects.get(pk=job_id)
        assert job.status == ScanJobStatus.COMMITTED
        assert job.events.filter(to_status=ScanJobStatus.COMMITTED).count() == 1
        assert job.events.filter(to_status=ScanJobStatus.PREVIEW).count() == 1
    assert {d.title for d in Document.objects.all()} == set(SCANS)
    # the killed poll was closed as taken over, not left running (the
    # survivor's own minute-by-minute polls may be running right now)
    polls = OperationRun.objects.filter(type="approvals.poll_knox")
    assert not polls.filter(
        created_at__lte=killed_at_wall, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    ).exists()
    taken_over = polls.filter(outcome=RunOutcome.FAILED)
    assert [[f["code"] for f in run.failure_summary] for run in taken_over] == [
        ["run.lease_expired"]
    ]

    # and the web role reports it: metrics by status and outcome, and ready
    # while a cluster is alive
    metrics = _metrics(base)
    assert _metric(metrics, "bureau_pending_actions", status="executed") == len(TENANTS)
    assert _metric(metrics, "bureau_pending_actions", status="pending") == 0
    assert _metric(metrics, "bureau_scan_jobs", state="committed") == len(SCANS)
    assert (
        _metric(
            metrics,
            "bureau_operation_runs_completed_total",
            type="approvals.poll_knox",
            outcome="failed",
        )
        == 1
    )
    assert (
        _metric(
            metrics,
            "bureau_operation_runs_completed_total",
            type="approvals.poll_knox",
            outcome="succeeded",
        )
        >= 1
    )
    assert _metric(metrics, "bureau_knox_last_successful_poll_age_seconds") < 60
    assert _metric(
        metrics, "bureau_http_requests_total", view="approval-request", method="POST", status="201"
    ) == len(TENANTS)
    ready = requests.get(f"{base}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "database": "up",
        "migrations": "applied",
        "cluster": "active",
    }
    print(f"operator run took {time.monotonic() - started:.0f} s")


def _job_status(api: str, headers: dict, job_id: int) -> str:
    response = requests.get(f"{api}/scanning/jobs/{job_id}/", headers=headers, timeout=10)
    return (
        response.json()["status"] if response.status_code == 200 else f"HTTP {response.status_code}"
    )
