"""Races between concurrent sessions, with real threads and one database
connection each. They run on both databases; on PostgreSQL the sessions
truly overlap (row locks and index waits are real), which is the case
production has."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from config.errors import InvalidTransition
from operations.choices import RunOutcome, RunStatus
from operations.models import OperationRun
from operations.services import mark_run_running, start_run
from operations.tracking import tracked_run
from tests.concurrency import run_concurrently
from tests.operations.factories import TenantFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("test_operation_types"),
]

THREADS = 16


def test_sixteen_concurrent_starts_of_one_identity_make_exactly_one_active_run():
    tenant = TenantFactory()

    results, errors = run_concurrently(
        lambda: start_run(type="test.tenant_job", tenant=tenant, inputs={"batch": 42}), THREADS
    )

    assert errors == []
    assert len(results) == THREADS
    active = OperationRun.objects.filter(
        tenant=tenant, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    )
    assert active.count() == 1
    assert {run.pk for run, _created in results} == {active.get().pk}
    assert sum(created for _run, created in results) == 1


def test_sixteen_concurrent_workspace_starts_make_exactly_one_active_run():
    results, errors = run_concurrently(lambda: start_run(type="test.workspace_job"), THREADS)

    assert errors == []
    assert len({run.pk for run, _ in results}) == 1
    assert OperationRun.objects.filter(type="test.workspace_job").count() == 1


def test_only_one_of_many_concurrent_workers_marks_a_run_running():
    run, _ = start_run(type="test.workspace_job")

    def claim():
        mine = OperationRun.objects.get(pk=run.pk)
        try:
            mark_run_running(mine)
        except InvalidTransition:
            return False
        return True

    results, errors = run_concurrently(claim, THREADS)

    assert errors == []
    assert sorted(results) == [False] * (THREADS - 1) + [True]


def test_concurrent_starts_behind_a_crashed_run_take_it_over_once_and_make_one_fresh_run():
    # given: a run a dead worker left running past its stale limit
    crashed, _ = start_run(type="test.workspace_job")
    mark_run_running(crashed)
    OperationRun.objects.filter(pk=crashed.pk).update(
        started_at=timezone.now() - timedelta(hours=2)
    )

    # when: many workers start the same identity at once
    results, errors = run_concurrently(lambda: start_run(type="test.workspace_job"), THREADS)

    # then: the crashed run is failed once, and exactly one fresh run exists
    assert errors == []
    fresh = {run.pk for run, _created in results}
    assert len(fresh) == 1 and crashed.pk not in fresh
    assert sum(created for _run, created in results) == 1
    crashed.refresh_from_db()
    assert crashed.outcome == RunOutcome.FAILED
    assert [f["code"] for f in crashed.failure_summary] == ["run.stale"]
    active = OperationRun.objects.filter(
        type="test.workspace_job", status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
    )
    assert list(active.values_list("pk", flat=True)) == list(fresh)


def test_concurrent_tracked_cycles_behind_a_crashed_run_run_the_body_once():
    crashed, _ = start_run(type="test.workspace_job")
    mark_run_running(crashed)
    OperationRun.objects.filter(pk=crashed.pk).update(
        started_at=timezone.now() - timedelta(hours=2)
    )
    bodies = []

    @tracked_run("test.workspace_job")
    def cycle(tracker):
        bodies.append(tracker.run.pk)
        time.sleep(1)  # still running while the other workers arrive

    results, errors = run_concurrently(cycle, 8)

    assert errors == []
    assert len(bodies) == 1
    assert bodies[0] != crashed.pk
