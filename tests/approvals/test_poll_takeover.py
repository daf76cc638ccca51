"""A poll killed mid-cycle does not stop polling (issue 8, item 15): the next
scheduled poll takes over its run once it is past the poll's stale limit,
which matches the one-minute schedule instead of reconcile's ten minutes."""

import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.tasks import poll_knox
from operations.catalog import operation_catalog
from operations.choices import RunOutcome, RunStatus
from operations.models import OperationRun
from operations.services import mark_run_running, start_run
from tests.live_server import start_manage, stop_process, wait_until

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


@pytest.mark.django_db(transaction=True)
def test_a_poller_killed_mid_call_is_taken_over_once_its_lease_runs_out(
    knox, request_tenant, settings
):
    # given: an approval in flight, and Knox so slow that a poll hangs in its call
    settings.RUN_LEASE_SECONDS = 2
    action = request_tenant("Killed Poll Inc")
    knox.faults(latency=60)
    poller = start_manage(
        "approvals_poll",
        KNOX_BASE_URL=knox.url,
        KNOX_READ_TIMEOUT="120",
        KNOX_SUBMIT_GRACE_SECONDS="0",
        RUN_LEASE_SECONDS="2",
    )
    try:
        assert wait_until(
            lambda: OperationRun.objects.filter(
                type="approvals.poll_knox", status=RunStatus.RUNNING
            ).exists(),
            timeout=60,
            process=poller,
        ), stop_process(poller)
        time.sleep(1.5)  # it renews its lease while it waits for Knox
        # when: its worker is killed in the middle of the Knox call
        os.killpg(poller.pid, signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        stop_process(poller)
    knox.faults(latency=0)
    crashed = OperationRun.objects.get(type="approvals.poll_knox")

    # then: while its lease holds, the next poll is skipped ...
    assert poll_knox() is None
    # ... and once it runs out, the next poll takes over and does the work
    assert wait_until(lambda: poll_knox() is not None, timeout=30, interval=0.5)
    takeover = time.monotonic() - killed_at
    print(f"poll taken over {takeover:.1f} s after its worker was killed (lease 2 s)")
    assert takeover < 10
    crashed.refresh_from_db()
    assert (crashed.status, crashed.outcome) == (RunStatus.COMPLETED, RunOutcome.FAILED)
    assert [f["code"] for f in crashed.failure_summary] == ["run.lease_expired"]
    fresh = OperationRun.objects.exclude(pk=crashed.pk).get(type="approvals.poll_knox")
    assert fresh.outcome == RunOutcome.SUCCEEDED and fresh.summary_counts["checked"] == 1
    action.refresh_from_db()
    assert action.status == "pending"  # asked again; nothing lost, nothing done twice
