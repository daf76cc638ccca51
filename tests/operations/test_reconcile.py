from datetime import timedelta

import pytest
from django.utils import timezone

from operations.choices import RunOutcome, RunStatus
from operations.models import OperationRun
from operations.services import mark_run_running, reconcile_stale_runs, start_run, system_workspace
from operations.tasks import reconcile_runs, reconcile_runs_task
from operations.tracking import RunAlreadyActive

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_operation_types")]


def _age(run, *, created=None, started=None):
    """Move a run's timestamps into the past, as time passing would."""
    now = timezone.now()
    fields = {}
    if created is not None:
        fields["created_at"] = now - created
    if started is not None:
        fields["started_at"] = now - started
    OperationRun.objects.filter(pk=run.pk).update(**fields)


def test_stale_queued_and_running_runs_are_completed_as_failed():
    # given: the default limits are 30 minutes queued and 1 hour running
    stale_queued, _ = start_run(type="test.workspace_job", inputs={})
    _age(stale_queued, created=timedelta(minutes=31))
    stale_running, _ = start_run(type="test.tenant_job", tenant=_tenant(), inputs={"batch": 1})
    mark_run_running(stale_running)
    _age(stale_running, started=timedelta(minutes=61))
    fresh_running, _ = start_run(type="test.tenant_job", tenant=_tenant(), inputs={"batch": 2})
    mark_run_running(fresh_running)
    _age(fresh_running, started=timedelta(minutes=59))

    # when
    counts = reconcile_stale_runs()

    # then
    assert counts == {"checked": 2, "reconciled": 2, "skipped": 0}
    for run in (stale_queued, stale_running):
        run.refresh_from_db()
        assert (run.status, run.outcome) == (RunStatus.COMPLETED, RunOutcome.FAILED)
        assert run.failure_summary[-1]["code"] == "run.stale"
    fresh_running.refresh_from_db()
    assert fresh_running.status == RunStatus.RUNNING


def test_reconcile_records_its_own_workspace_scoped_run():
    stale, _ = start_run(type="test.workspace_job")
    _age(stale, created=timedelta(hours=2))

    run = reconcile_runs(initiator_name="test")

    run.refresh_from_db()
    assert run.type == "ops.reconcile_runs"
    assert run.workspace == system_workspace()
    assert run.tenant is None
    assert (run.status, run.outcome) == (RunStatus.COMPLETED, RunOutcome.SUCCEEDED)
    assert run.summary_counts == {"checked": 1, "reconciled": 1, "skipped": 0}


def test_a_second_reconcile_while_one_runs_is_refused_and_the_task_skips():
    running, _ = start_run(type="ops.reconcile_runs")
    mark_run_running(running)

    with pytest.raises(RunAlreadyActive):
        reconcile_runs()
    assert reconcile_runs_task() is None
    assert OperationRun.objects.filter(type="ops.reconcile_runs").count() == 1


def test_a_stuck_reconcile_is_itself_reconciled_by_the_next_one():
    stuck, _ = start_run(type="ops.reconcile_runs")
    mark_run_running(stuck)
    _age(stuck, started=timedelta(minutes=16))

    counts = reconcile_runs_task()

    stuck.refresh_from_db()
    assert stuck.outcome == RunOutcome.FAILED
    assert stuck.failure_summary[-1]["code"] == "run.stale"
    assert counts == {"checked": 0, "reconciled": 0, "skipped": 0}
    assert (
        OperationRun.objects.filter(type="ops.reconcile_runs", outcome=RunOutcome.SUCCEEDED).count()
        == 1
    )


def test_runs_of_unregistered_types_use_the_default_limits(test_operation_types):
    from operations.catalog import operation_catalog

    run, _ = start_run(type="test.workspace_job")
    operation_catalog.unregister("test.workspace_job")
    _age(run, created=timedelta(minutes=31))

    assert reconcile_stale_runs()["reconciled"] == 1


def _tenant():
    from tests.operations.factories import TenantFactory

    return TenantFactory()
