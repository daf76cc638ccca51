"""The admin index's "Needs attention" tiles: a count per problem, each linking
to the changelist filtered to exactly what it counted; cheap whatever the
table sizes; only what the user may view."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.choices import ActionStatus, FailureStage
from approvals.models import PendingAction
from automation.choices import AlertStatus, DeliveryStatus
from automation.models import NotificationDelivery
from config.observability.attention import age_text, attention
from operations.choices import RunOutcome, RunStatus
from operations.models import Workspace
from scanning.choices import ScanJobStatus
from scanning.models import ScanAgentStatus, ScanJob
from tests.observability.factories import (
    AlertFactory,
    NotificationDeliveryFactory,
    OperationRunFactory,
    PendingActionFactory,
    ScanJobFactory,
    TaskFactory,
)
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


@pytest.fixture
def superuser():
    return UserFactory(username="oncall", is_staff=True, is_superuser=True)


@pytest.fixture
def console(client, superuser):
    client.force_login(superuser)
    return client


def _ago(delta: timedelta):
    return timezone.now() - delta


def _plant_one_of_each_problem() -> None:
    """One row per problem, and next to each a row that looks close but is fine."""
    PendingActionFactory(status=ActionStatus.FAILED, failure_stage=FailureStage.SUBMIT)
    PendingActionFactory(status=ActionStatus.FAILED, failure_stage=FailureStage.EXECUTE)
    unknown = PendingActionFactory(status=ActionStatus.SUBMIT_UNKNOWN)
    PendingActionFactory(status=ActionStatus.SUBMIT_UNKNOWN)  # still within the grace period
    PendingAction.objects.filter(pk=unknown.pk).update(updated_at=_ago(HOUR))
    waiting = PendingActionFactory(status=ActionStatus.PENDING)
    PendingActionFactory(status=ActionStatus.PENDING)  # young
    PendingAction.objects.filter(pk=waiting.pk).update(created_at=_ago(timedelta(days=3)))

    AlertFactory(severity="critical")
    AlertFactory(severity="critical", status=AlertStatus.ACKNOWLEDGED)
    AlertFactory(severity="low")

    NotificationDeliveryFactory(status=DeliveryStatus.FAILED)
    old_failure = NotificationDeliveryFactory(status=DeliveryStatus.FAILED)
    NotificationDelivery.objects.filter(pk=old_failure.pk).update(updated_at=_ago(48 * HOUR))
    NotificationDeliveryFactory(status=DeliveryStatus.RETRYING)

    ScanJobFactory(status=ScanJobStatus.FAILED)
    stalled = ScanJobFactory(status=ScanJobStatus.SCANNING)
    ScanJobFactory(status=ScanJobStatus.QUEUED)
    ScanJob.objects.filter(pk=stalled.pk).update(last_progress_at=_ago(2 * HOUR))

    # housekeeping (the system workspace), hidden from the ledger's list by default
    OperationRunFactory(
        workspace=Workspace.objects.get(slug=settings.BUREAU_SYSTEM_WORKSPACE_SLUG),
        type="ops.reconcile_runs",
        status=RunStatus.COMPLETED,
        outcome=RunOutcome.FAILED,
        completed_at=_ago(HOUR),
    )
    OperationRunFactory(
        type="ops.reconcile_runs",
        status=RunStatus.COMPLETED,
        outcome=RunOutcome.FAILED,
        completed_at=_ago(48 * HOUR),
    )
    OperationRunFactory(
        type="ops.reconcile_runs",
        status=RunStatus.RUNNING,
        outcome=RunOutcome.PENDING,
        started_at=_ago(5 * HOUR),
        run_identity_hash="a" * 64,
    )
    TaskFactory(success=False)


def _tiles_by_label(user):
    return {tile.label: tile for tile in attention(user=user).tiles}


def test_with_nothing_wrong_the_index_is_green(console, superuser):
    # given: an empty database

    # when
    response = console.get("/admin/")

    # then
    assert response.status_code == 200
    assert "All clear: nothing needs attention." in response.text
    assert 'class="attention-bad"' not in response.text
    assert not attention(user=superuser).any


def test_each_problem_is_counted_and_its_link_opens_exactly_those_rows(console, superuser):
    # given
    _plant_one_of_each_problem()

    # when
    tiles = _tiles_by_label(superuser)
    index = console.get("/admin/")

    # then: every planted problem is counted once, the near misses not at all
    expected = {
        "Pending actions failed at submit": 1,
        "Pending actions failed at execution": 1,
        "Submit outcome unknown past the grace period": 1,
        "Pending at Knox too long": 1,
        "Unacknowledged critical alerts": 1,
        "Unacknowledged high alerts": 0,
        "Unacknowledged low alerts": 1,
        "Deliveries failed (24 h)": 1,
        "Deliveries retrying": 1,
        "Scan jobs failed (24 h)": 1,
        "Scan jobs stuck (no progress past the stall limit)": 1,
        "Runs failed (24 h)": 1,
        "Runs running past their limit": 1,
        "Background tasks failed": 1,
    }
    assert {label: int(tiles[label].value) for label in expected} == expected
    assert "Something needs attention" in index.text
    # and each tile's link lands on a changelist showing exactly the rows it counted
    for label, count in expected.items():
        response = console.get(tiles[label].url)
        assert response.status_code == 200, (label, tiles[label].url)
        assert response.context["cl"].result_count == count, (label, tiles[label].url)
        assert html.escape(tiles[label].url) in index.text


def test_problems_come_first_and_critical_alerts_before_the_others(superuser):
    # given
    AlertFactory(severity="low")
    AlertFactory(severity="critical")

    # when
    labels = [tile.label for tile in attention(user=superuser).tiles]

    # then
    assert labels[:2] == ["Unacknowledged critical alerts", "Unacknowledged low alerts"]


def test_ages_show_how_long_since_the_knox_poll_the_heartbeat_and_the_oldest_event(
    superuser, settings
):
    # given: a Knox poll 10 minutes ago (over the 5-minute limit), a fresh heartbeat
    settings.CONSOLE_KNOX_POLL_MAX_AGE = 300
    OperationRunFactory(
        type="approvals.poll_knox",
        status=RunStatus.COMPLETED,
        outcome=RunOutcome.SUCCEEDED,
        completed_at=_ago(timedelta(minutes=10)),
    )
    ScanAgentStatus.objects.update_or_create(pk=1, defaults={"last_heartbeat": timezone.now()})

    # when
    tiles = _tiles_by_label(superuser)

    # then
    poll = tiles["Since the last successful Knox poll"]
    assert (poll.value, poll.needs_attention) == ("10 min", True)
    assert poll.url.endswith("?type=approvals.poll_knox&kind=all")
    heartbeat = tiles["Since the scan agent's last heartbeat"]
    assert heartbeat.needs_attention is False
    assert re.fullmatch(r"\d+ s", heartbeat.value)
    assert tiles["Outbox events waiting"].value == "0"


def test_a_user_sees_only_the_tiles_of_what_they_may_view(client):
    # given: staff who may view alerts only
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_alert"))
    AlertFactory(severity="critical")
    PendingActionFactory(status=ActionStatus.FAILED, failure_stage=FailureStage.SUBMIT)
    client.force_login(viewer)

    # when
    response = client.get("/admin/")

    # then
    labels = {tile.label for tile in attention(user=viewer).tiles}
    assert labels == {
        "Unacknowledged critical alerts",
        "Unacknowledged high alerts",
        "Unacknowledged medium alerts",
        "Unacknowledged low alerts",
    }
    assert "Pending actions failed" not in response.text


def _fill(rows: int) -> None:
    for i in range(rows):
        PendingActionFactory(
            status=[ActionStatus.FAILED, ActionStatus.PENDING, ActionStatus.SUBMIT_UNKNOWN][i % 3],
            failure_stage=FailureStage.SUBMIT if i % 3 == 0 else "",
        )
        AlertFactory(severity=["low", "critical"][i % 2])
        NotificationDeliveryFactory(status=[DeliveryStatus.FAILED, DeliveryStatus.SENT][i % 2])
        ScanJobFactory(status=[ScanJobStatus.FAILED, ScanJobStatus.COMMITTED][i % 2])
        OperationRunFactory(
            type=f"test.type_{i % 5}",
            status=RunStatus.COMPLETED,
            outcome=RunOutcome.FAILED,
            completed_at=timezone.now(),
        )
        TaskFactory(success=bool(i % 2))


def test_the_tiles_cost_a_fixed_number_of_queries_whatever_the_table_sizes(
    console, superuser, django_assert_max_num_queries
):
    # given: a few rows
    _fill(2)
    with CaptureQueriesContext(connection) as few:
        attention(user=superuser)
    with CaptureQueriesContext(connection) as few_page:
        console.get("/admin/")

    # when: many more rows of every kind
    _fill(60)

    # then: the same queries, one per model plus the four single values
    with django_assert_max_num_queries(9):
        attention(user=superuser)
    with CaptureQueriesContext(connection) as many:
        attention(user=superuser)
    with CaptureQueriesContext(connection) as many_page:
        console.get("/admin/")
    assert len(many) == len(few) == 9
    assert len(many_page) == len(few_page)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (59, "59 s"),
        (60, "1 min"),
        (3600, "1 h"),
        (3900, "1 h 5 min"),
        (90000, "1 d 1 h"),
    ],
)
def test_ages_read_as_an_on_call_person_would_say_them(seconds, text):
    assert age_text(seconds) == text
