"""The reconcile schedule end to end through real django-q2: the schedule row
that sync_schedules writes, django-q2's own scheduler turning it into a
queued task, and a real ``qcluster`` process running it against the test
database."""

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Schedule, Task
from django_q.scheduler import scheduler

from operations.choices import RunOutcome
from operations.models import OperationRun
from operations.services import start_run

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("test_operation_types"),
]


def test_the_reconcile_schedule_runs_in_a_real_cluster_and_lands_in_the_ledger(qcluster):
    # given: a stale run, and the reconcile schedule due now
    stale, _ = start_run(type="test.workspace_job")
    OperationRun.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=1))
    call_command("sync_schedules", verbosity=0)
    Schedule.objects.filter(name="bureau:ops.reconcile_runs").update(
        next_run=timezone.now() - timedelta(seconds=1)
    )

    # when: django-q2's scheduler enqueues it, and the cluster runs it
    scheduler(broker=get_broker())
    deadline = time.monotonic() + 60
    task = None
    while time.monotonic() < deadline and task is None:
        assert qcluster.poll() is None, "qcluster died"
        task = Task.objects.filter(func="operations.tasks.reconcile_runs_task").first()
        time.sleep(0.25)

    # then
    assert task is not None, "the cluster did not run the scheduled task within 60s"
    assert task.success, task.result
    assert task.result == {"checked": 1, "reconciled": 1, "skipped": 0}
    stale.refresh_from_db()
    assert stale.outcome == RunOutcome.FAILED
    reconcile = OperationRun.objects.get(type="ops.reconcile_runs")
    assert reconcile.outcome == RunOutcome.SUCCEEDED
    assert reconcile.initiator_name == "schedule"
    assert Schedule.objects.get(name="bureau:ops.reconcile_runs").next_run > timezone.now()
