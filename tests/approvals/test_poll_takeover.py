"""A poll killed mid-cycle does not stop polling (issue 8, item 15): the next
scheduled poll takes over its run once it is past the poll's stale limit,
which matches the one-minute schedule instead of reconcile's ten minutes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.tasks import poll_knox
from operations.catalog import operation_catalog
from operations.choices import RunOutcome, RunStatus
from operations.models import OperationRun
from operations.services import mark_run_running, start_run

pytestmark = pytest.mark.django_db


def test_the_poll_stale_limit_matches_its_one_minute_schedule():
    poll = operation_catalog.get("approvals.poll_knox")

    assert poll.stale_running_after <= timedelta(minutes=3)
    assert poll.stale_queued_after <= timedelta(minutes=3)


def test_the_poll_after_a_crashed_one_runs_instead_of_being_skipped():
    # given: a poll killed four minutes ago, its run left running
    crashed, _ = start_run(type="approvals.poll_knox", initiator_name="schedule")
    mark_run_running(crashed)
    OperationRun.objects.filter(pk=crashed.pk).update(
        started_at=timezone.now() - timedelta(minutes=4)
    )

    # when: the next scheduled poll comes (nothing is in flight, so Knox is not asked)
    counts = poll_knox()

    # then: it ran (not skipped as "already running") in a fresh run
    assert counts is not None and counts["checked"] == 0
    crashed.refresh_from_db()
    assert crashed.outcome == RunOutcome.FAILED
    assert [f["code"] for f in crashed.failure_summary] == ["run.stale"]
    fresh = OperationRun.objects.exclude(pk=crashed.pk).get(type="approvals.poll_knox")
    assert (fresh.status, fresh.outcome) == (RunStatus.COMPLETED, RunOutcome.SUCCEEDED)


def test_a_poll_running_for_a_minute_is_still_left_alone():
    running, _ = start_run(type="approvals.poll_knox", initiator_name="schedule")
    mark_run_running(running)
    OperationRun.objects.filter(pk=running.pk).update(
        started_at=timezone.now() - timedelta(minutes=1)
    )

    assert poll_knox() is None

    running.refresh_from_db()
    assert running.status == RunStatus.RUNNING
