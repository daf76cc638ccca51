"""Workers die; the work goes on elsewhere (issue 10, item 3).

Two real ``qcluster`` processes share one PostgreSQL, as several worker
machines would. The first is killed with SIGKILL (itself and its forked
workers) in the middle of a piece of work; the test then shows that the
second finishes that work within two minutes — nothing lost, nothing done
twice — through the same schedules production runs. Leases are shortened
(``RUN_LEASE_SECONDS``) so each test takes seconds, not minutes; the takeover
times printed are measured, and the README reports them.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from operations.choices import RunOutcome, RunStatus
from operations.models import OperationRun
from scanning import services as scanning
from scanning.choices import ScanJobStatus
from scanning.models import ScanJob
from tests.conftest import on_postgres
from tests.live_server import start_manage, stop_process, wait_until
from tests.scanning.pdfs import scanned_pdf, upload

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not on_postgres(),
        reason="several worker processes on one database: the production shape is PostgreSQL",
    ),
]

LEASE_SECONDS = 5
TWO_MINUTES = 120


@pytest.fixture
def clusters(settings):
    """Start named ``qcluster`` processes (one worker each) on the test database,
    with the short lease; all are stopped at the end."""
    settings.RUN_LEASE_SECONDS = LEASE_SECONDS
    call_command("sync_schedules", verbosity=0)
    started = []

    def start() -> object:
        process = start_manage("qcluster", Q_WORKERS="1", RUN_LEASE_SECONDS=str(LEASE_SECONDS))
        started.append(process)
        return process

    yield start
    for process in started:
        output = stop_process(process)
        print(output[-3000:])  # shown by pytest when the test failed


def kill(process) -> float:
    """SIGKILL the cluster and everything it forked; when it happened."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    return time.monotonic()


def due_now(schedule: str) -> None:
    """Make a schedule due (as the minute passing would) for the clusters' scheduler."""
    Schedule.objects.filter(name=f"bureau:{schedule}").update(
        next_run=timezone.now() - timedelta(seconds=1)
    )


def test_an_assembly_killed_mid_merge_is_finished_by_another_worker(clusters):
    # given: a job whose kept batches take seconds to merge (20 × 500 pages)
    issued = scanning.scan_agent_create(name="kill-test-agent")
    job = scanning.scan_job_create(title="Killed assembly")
    scanning.scan_job_queue(job_id=job.pk)
    assert scanning.scan_job_claim(agent=issued.agent).pk == job.pk
    for seq in range(1, 21):
        scanning.scan_job_start_batch(job_id=job.pk, agent=issued.agent)
        scanning.scan_batch_upload(
            job_id=job.pk,
            batch_seq=seq,
            upload=upload(scanned_pdf(job_id=job.pk, batch_seq=seq, pages=500)),
            agent=issued.agent,
        )
    first = clusters()

    # when: the agent finishes, the first worker starts the merge and is killed in it
    scanning.scan_job_finish(job_id=job.pk, agent=issued.agent)
    assert wait_until(
        lambda: OperationRun.objects.filter(
            type="scanning.assemble_job", status=RunStatus.RUNNING
        ).exists(),
        timeout=60,
        interval=0.05,
    ), "the first worker never started the merge"
    killed_at = kill(first)
    job.refresh_from_db()
    assert job.status == ScanJobStatus.ASSEMBLING, "the merge finished before the kill"

    # then: the second worker's liveness check (every minute) queues the merge
    # again, and it takes the dead worker's run over once the lease ran out
    clusters()
    time.sleep(LEASE_SECONDS)
    due_now("scanning.check_agent")
    finished = wait_until(
        lambda: ScanJob.objects.filter(pk=job.pk, status=ScanJobStatus.PREVIEW).exists(),
        timeout=TWO_MINUTES,
        interval=0.5,
    )
    took = time.monotonic() - killed_at
    print(f"assembly taken over and finished {took:.1f} s after its worker was killed")
    assert finished, "no other worker finished the merge within two minutes"
    job.refresh_from_db()
    assert job.page_count == 20 * 500
    dead = OperationRun.objects.filter(type="scanning.assemble_job").earliest("pk")
    assert (dead.outcome, [f["code"] for f in dead.failure_summary]) == (
        RunOutcome.FAILED,
        ["run.lease_expired"],
    )
    # merged once: one move to preview, one merged file
    assert job.events.filter(to_status=ScanJobStatus.PREVIEW).count() == 1
