"""Runs survive the death of their worker (issue 10, item 3): a running run
holds a lease its worker renews (a heartbeat, from a thread of tracked_run);
the next start of the same run after the lease ran out completes the old one
as failed (``run.lease_expired``) and runs in a fresh one."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from operations.catalog import operation_catalog
from operations.choices import RunOutcome, RunScope, RunStatus
from operations.models import OperationRun
from operations.services import mark_run_running, run_heartbeat, start_run
from operations.tracking import tracked_run
from tests.concurrency import run_concurrently

LEASE = timedelta(seconds=0.6)


@pytest.fixture
def leased_type():
    """A workspace job with a short lease (renewed every 0.2 s)."""
    operation_catalog.register(
        "test.leased_job",
        label="Leased job",
        scope=RunScope.WORKSPACE,
        summary_keys=("processed",),
        lease=LEASE,
    )
    yield "test.leased_job"
    operation_catalog.unregister("test.leased_job")


def _running(type_key: str, *, heartbeat_age: timedelta) -> OperationRun:
    run, _ = start_run(type=type_key, initiator_name="worker that died")
    mark_run_running(run)
    OperationRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - heartbeat_age)
    run.refresh_from_db()
    return run


@pytest.mark.django_db(transaction=True)
def test_a_working_run_keeps_renewing_its_lease(leased_type):
    # given: a tracked body that works for three lease periods
    seen = {}

    @tracked_run(leased_type)
    def slow(tracker):
        started = OperationRun.objects.get(pk=tracker.run.pk).heartbeat_at
        time.sleep(3 * LEASE.total_seconds())
        seen["renewed"] = OperationRun.objects.get(pk=tracker.run.pk).heartbeat_at - started
        return {"processed": 1}

    # when
    slow()

    # then: the heartbeat moved while the body slept, and nobody took it over
    assert seen["renewed"] >= LEASE
    run = OperationRun.objects.get(type=leased_type)
    assert (run.status, run.outcome) == (RunStatus.COMPLETED, RunOutcome.SUCCEEDED)


@pytest.mark.django_db
def test_a_run_whose_lease_ran_out_is_taken_over_by_the_next_start(leased_type):
    dead = _running(leased_type, heartbeat_age=LEASE * 2)

    fresh, created = start_run(type=leased_type, initiator_name="schedule")

    assert created and fresh.pk != dead.pk
    assert fresh.context["took_over_run"] == dead.pk
    dead.refresh_from_db()
    assert (dead.status, dead.outcome) == (RunStatus.COMPLETED, RunOutcome.FAILED)
    assert [f["code"] for f in dead.failure_summary] == ["run.lease_expired"]
    assert "its worker is gone" in dead.failure_summary[0]["message"]


@pytest.mark.django_db
def test_a_run_whose_worker_is_alive_is_left_alone(leased_type):
    alive = _running(leased_type, heartbeat_age=LEASE / 3)

    again, created = start_run(type=leased_type, initiator_name="schedule")

    assert (again.pk, created) == (alive.pk, False)
    alive.refresh_from_db()
    assert alive.status == RunStatus.RUNNING


@pytest.mark.django_db
def test_a_heartbeat_renews_only_a_running_run(leased_type):
    run = _running(leased_type, heartbeat_age=timedelta(seconds=30))

    assert run_heartbeat(run.pk) is True
    run.refresh_from_db()
    assert timezone.now() - run.heartbeat_at < timedelta(seconds=5)

    OperationRun.objects.filter(pk=run.pk).update(
        status=RunStatus.COMPLETED, outcome=RunOutcome.FAILED, completed_at=timezone.now()
    )
    assert run_heartbeat(run.pk) is False


@pytest.mark.django_db
def test_the_tracked_task_after_a_dead_worker_runs_instead_of_being_skipped(leased_type):
    # given: a run whose worker stopped renewing its lease
    dead = _running(leased_type, heartbeat_age=LEASE * 2)

    @tracked_run(leased_type)
    def task(tracker):
        return {"processed": 3}

    # when / then: the next attempt runs in a fresh run
    assert task() == {"processed": 3}
    fresh = OperationRun.objects.exclude(pk=dead.pk).get(type=leased_type)
    assert fresh.summary_counts == {"processed": 3}


@pytest.mark.django_db(transaction=True)
def test_sixteen_workers_taking_over_one_dead_run_start_exactly_one_fresh_run(leased_type):
    dead = _running(leased_type, heartbeat_age=LEASE * 5)

    results, errors = run_concurrently(
        lambda: start_run(type=leased_type, initiator_name="schedule"), 16
    )

    assert errors == []
    assert len({run.pk for run, _created in results}) == 1
    assert sum(created for _run, created in results) == 1
    dead.refresh_from_db()
    assert [f["code"] for f in dead.failure_summary] == ["run.lease_expired"]
    assert OperationRun.objects.filter(type=leased_type, status=RunStatus.QUEUED).count() == 1


def test_a_type_without_its_own_lease_uses_the_setting(settings):
    settings.RUN_LEASE_SECONDS = 42

    assert operation_catalog.get("approvals.poll_knox").lease_duration == timedelta(seconds=42)
