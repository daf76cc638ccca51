"""GET /metrics: access, what it reports, and what it costs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automation.entities import entities_sync
from automation.models import Entity
from operations.choices import RunOutcome, RunStatus
from operations.models import OperationRun
from scanning.models import ScanAgentStatus
from tests.observability.conftest import scrape
from tests.observability.factories import (
    AlertFactory,
    AutomationEventFactory,
    NotificationDeliveryFactory,
    OperationRunFactory,
    OrmQFactory,
    PendingActionFactory,
    ScanJobFactory,
    TaskFactory,
)

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"


# --- access ---------------------------------------------------------------------------------
def test_metrics_are_off_until_a_token_or_an_allowlist_is_set(client, settings):
    # given: neither METRICS_TOKEN nor METRICS_ALLOWED_IPS
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []

    # when / then: the endpoint does not exist, even for a local caller with a token
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_a_bearer_token_opens_metrics_and_a_wrong_or_missing_one_is_refused(client, settings):
    # given
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []

    # when
    right = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x")
    missing = client.get("/metrics")
    other_scheme = client.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}")

    # then
    assert right.status_code == 200
    assert b"bureau_pending_actions" in right.content
    assert [wrong.status_code, missing.status_code, other_scheme.status_code] == [403] * 3
    assert b"bureau_" not in wrong.content


def test_the_allowlist_checks_the_peer_address_and_ignores_forwarded_headers(client, settings):
    # given: a network allowed, no token
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.1.0.0/16", "192.0.2.7"]

    # when
    inside = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    single = client.get("/metrics", REMOTE_ADDR="192.0.2.7")
    outside = client.get("/metrics", REMOTE_ADDR="10.2.0.1")
    spoofed = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.1.2.3")

    # then
    assert (inside.status_code, single.status_code) == (200, 200)
    assert (outside.status_code, spoofed.status_code) == (403, 403)


def test_a_bad_allowlist_entry_or_a_short_token_is_reported_by_the_checks(settings):
    # given
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "not-an-address"]
    settings.METRICS_TOKEN = "short"

    # when
    ids = {message.id for message in run_checks()}

    # then
    assert {"observability.E001", "observability.W001"} <= ids


# --- what it reports --------------------------------------------------------------------------
def _aged(instance, field: str, seconds: float):
    """Move an auto_now_add timestamp into the past."""
    type(instance).objects.filter(pk=instance.pk).update(
        **{field: timezone.now() - timedelta(seconds=seconds)}
    )


def _completed_run(op_type: str, outcome: str, *, seconds: float | None, ago: float = 60):
    completed_at = timezone.now() - timedelta(seconds=ago)
    started_at = None if seconds is None else completed_at - timedelta(seconds=seconds)
    return OperationRunFactory(
        type=op_type,
        status=RunStatus.COMPLETED,
        outcome=outcome,
        started_at=started_at,
        completed_at=completed_at,
    )


def _created_long_ago(*runs) -> None:
    """Past the window in which a run's insert could still be uncommitted."""
    for run in runs:
        _aged(run, "created_at", 3600)


def test_metrics_report_backlogs_ages_and_ledger_totals(client, metrics_from_localhost):
    # given: pending actions, one in flight for 10 minutes
    old = PendingActionFactory(status="pending")
    _aged(old, "created_at", 600)
    PendingActionFactory(status="pending")
    PendingActionFactory(status="submit_unknown")
    PendingActionFactory(status="executed", executed_at=timezone.now())
    # Knox polls: the last good one 90 s ago, a failed one after it (not a success)
    _completed_run("approvals.poll_knox", RunOutcome.SUCCEEDED, seconds=0.05, ago=400)
    _completed_run("approvals.poll_knox", RunOutcome.SUCCEEDED, seconds=2, ago=300)
    _completed_run("approvals.poll_knox", RunOutcome.PARTIALLY_SUCCEEDED, seconds=45, ago=90)
    _completed_run("approvals.poll_knox", RunOutcome.FAILED, seconds=700, ago=30)
    _completed_run("approvals.poll_knox", RunOutcome.FAILED, seconds=None, ago=20)
    OperationRunFactory(type="scanning.check_agent", status=RunStatus.RUNNING)
    # the outbox: two waiting, the oldest for 5 minutes
    entities_sync()
    entity = Entity.objects.get(model_label="operations.Tenant")
    _aged(AutomationEventFactory(entity=entity), "created_at", 300)
    AutomationEventFactory(entity=entity)
    AutomationEventFactory(entity=entity, status="processed")
    # deliveries, alerts, scan jobs, the agent
    NotificationDeliveryFactory(channel="email", status="sent")
    NotificationDeliveryFactory(channel="email", status="sent")
    NotificationDeliveryFactory(channel="webhook", status="retrying")
    AlertFactory(severity="high")
    AlertFactory(severity="high")
    AlertFactory(severity="critical")
    AlertFactory(severity="low", status="acknowledged")
    ScanJobFactory(status="draft")
    ScanJobFactory(status="queued")
    ScanJobFactory(status="committed")
    ScanAgentStatus.objects.update_or_create(
        pk=1, defaults={"last_heartbeat": timezone.now() - timedelta(seconds=30)}
    )
    # django-q2: two tasks waiting, one taken by a worker, two failures
    OrmQFactory()
    OrmQFactory()
    OrmQFactory(lock=timezone.now() + timedelta(minutes=10))
    TaskFactory(success=False, stopped=timezone.now() - timedelta(seconds=50))
    TaskFactory(success=False, stopped=timezone.now() - timedelta(seconds=40))
    TaskFactory(success=True, stopped=timezone.now() - timedelta(seconds=20))

    # when
    metrics = scrape(client)

    # then: approvals
    assert metrics.value("bureau_pending_actions", status="pending") == 2
    assert metrics.value("bureau_pending_actions", status="submit_unknown") == 1
    assert metrics.value("bureau_pending_actions", status="executed") == 1
    assert metrics.value("bureau_pending_actions", status="failed") == 0
    assert 600 <= metrics.value("bureau_pending_action_oldest_in_flight_age_seconds") < 660
    assert 90 <= metrics.value("bureau_knox_last_successful_poll_age_seconds") < 150
    # automation
    assert metrics.value("bureau_automation_outbox_pending_events") == 2
    assert 300 <= metrics.value("bureau_automation_outbox_oldest_pending_age_seconds") < 360
    assert metrics.value("bureau_notification_deliveries", channel="email", status="sent") == 2
    assert (
        metrics.value("bureau_notification_deliveries", channel="webhook", status="retrying") == 1
    )
    assert metrics.value("bureau_notification_deliveries", channel="in_app", status="sent") == 0
    assert metrics.value("bureau_active_alerts", severity="high") == 2
    assert metrics.value("bureau_active_alerts", severity="critical") == 1
    assert metrics.value("bureau_active_alerts", severity="low") == 0
    # scanning
    assert metrics.value("bureau_scan_jobs", state="draft") == 1
    assert metrics.value("bureau_scan_jobs", state="committed") == 1
    assert metrics.value("bureau_scan_jobs", state="scanning") == 0
    assert 30 <= metrics.value("bureau_scan_agent_heartbeat_age_seconds") < 90
    # the ledger: counters include the run that never started, histograms do not
    poll = {"type": "approvals.poll_knox"}
    assert metrics.value("bureau_operation_runs_completed_total", **poll, outcome="succeeded") == 2
    assert metrics.value("bureau_operation_runs_completed_total", **poll, outcome="failed") == 2
    assert (
        metrics.value(
            "bureau_operation_runs_completed_total", type="ops.reconcile_runs", outcome="failed"
        )
        == 0
    )
    ok = {**poll, "outcome": "succeeded"}
    duration = "bureau_operation_run_duration_seconds"
    assert metrics.value(f"{duration}_bucket", **ok, le="0.1") == 1
    assert metrics.value(f"{duration}_bucket", **ok, le="2.5") == 2
    assert metrics.value(f"{duration}_bucket", **ok, le="+Inf") == 2
    assert metrics.value(f"{duration}_count", **ok) == 2
    assert metrics.value(f"{duration}_sum", **ok) == pytest.approx(2.05, abs=1e-3)
    failed = {**poll, "outcome": "failed"}
    assert metrics.value(f"{duration}_bucket", **failed, le="600.0") == 0
    assert metrics.value(f"{duration}_bucket", **failed, le="1800.0") == 1
    assert metrics.value(f"{duration}_count", **failed) == 1
    assert metrics.value(f"{duration}_sum", **failed) == pytest.approx(700, abs=1e-3)
    assert (
        metrics.value("bureau_operation_runs_active", type="scanning.check_agent", status="running")
        == 1
    )
    # django-q2
    assert metrics.value("bureau_task_queue", state="waiting") == 2
    assert metrics.value("bureau_task_queue", state="taken") == 1
    assert metrics.value("bureau_task_failures") == 2
    assert 20 <= metrics.value("bureau_task_last_finished_age_seconds") < 80


def test_ages_that_have_no_subject_yet_are_absent_or_zero(client, metrics_from_localhost):
    # given: an empty database

    # when
    metrics = scrape(client)

    # then: nothing to be late about
    assert metrics.value("bureau_pending_action_oldest_in_flight_age_seconds") == 0
    assert metrics.value("bureau_automation_outbox_oldest_pending_age_seconds") == 0
    # and what has never happened is absent, not a misleading number
    assert "bureau_knox_last_successful_poll_age_seconds" not in metrics.names()
    assert "bureau_scan_agent_heartbeat_age_seconds" not in metrics.names()
    assert "bureau_task_last_finished_age_seconds" not in metrics.names()


def _fill(rows: int) -> None:
    entities_sync()
    entity = Entity.objects.get(model_label="operations.Tenant")
    statuses = ["pending", "executed", "failed", "rejected"]
    for i in range(rows):
        PendingActionFactory(
            status=statuses[i % 4], executed_at=timezone.now() if i % 4 == 1 else None
        )
        _completed_run(f"test.type_{i % 7}", RunOutcome.SUCCEEDED, seconds=i)
        AutomationEventFactory(entity=entity, status="pending" if i % 2 else "processed")
        NotificationDeliveryFactory(channel=["email", "in_app", "webhook"][i % 3])
        AlertFactory(severity=["low", "high"][i % 2])
        ScanJobFactory(status=["draft", "queued", "committed"][i % 3])
        OrmQFactory()
        TaskFactory(success=bool(i % 2))


def test_a_scrape_costs_the_same_number_of_queries_whatever_the_table_sizes(
    client, metrics_from_localhost
):
    # given: a scrape of an empty database
    with CaptureQueriesContext(connection) as empty:
        scrape(client)

    # when: every table has rows, of many statuses and run types
    _fill(40)
    with CaptureQueriesContext(connection) as full:
        scrape(client)

    # then: the same fixed set of aggregate queries
    assert len(full) == len(empty) == 14, [q["sql"] for q in full.captured_queries]


def test_http_requests_are_counted_and_timed_by_view(client, metrics_from_localhost):
    # given
    before = scrape(client)
    labels = {"view": "healthz", "method": "GET", "status": "200"}
    count_before = before.value("bureau_http_requests_total", **labels) or 0
    timed_before = (
        before.value("bureau_http_request_duration_seconds_count", view="healthz", method="GET")
        or 0
    )

    # when
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    client.get("/no/such/page/")

    # then
    after = scrape(client)
    assert after.value("bureau_http_requests_total", **labels) == count_before + 3
    assert (
        after.value("bureau_http_request_duration_seconds_count", view="healthz", method="GET")
        == timed_before + 3
    )
    unmatched = after.value(
        "bureau_http_requests_total", view="<unmatched>", method="GET", status="404"
    )
    assert unmatched >= 1


def test_run_totals_stay_exact_as_runs_settle_between_scrapes(client, metrics_from_localhost):
    # given: old runs: one completed, one still running, one completed after it
    first = _completed_run("approvals.poll_knox", RunOutcome.SUCCEEDED, seconds=1)
    running = OperationRunFactory(
        type="approvals.poll_knox", status=RunStatus.RUNNING, started_at=timezone.now()
    )
    third = _completed_run("approvals.poll_knox", RunOutcome.SUCCEEDED, seconds=20)
    _created_long_ago(first, running, third)
    ok = {"type": "approvals.poll_knox", "outcome": "succeeded"}

    # when: scraped (only the run before the running one can be settled yet) ...
    before = scrape(client)
    # ... then the running run completes, a new one arrives, and it is scraped again
    OperationRun.objects.filter(pk=running.pk).update(
        status=RunStatus.COMPLETED,
        outcome=RunOutcome.SUCCEEDED,
        completed_at=timezone.now(),
        started_at=timezone.now() - timedelta(seconds=400),
    )
    _completed_run("approvals.poll_knox", RunOutcome.FAILED, seconds=0.2)
    after = scrape(client)
    again = scrape(client)

    # then: every run counted once, at each scrape
    assert before.value("bureau_operation_runs_completed_total", **ok) == 2
    assert after.value("bureau_operation_runs_completed_total", **ok) == 3
    assert after.value("bureau_operation_run_duration_seconds_sum", **ok) == pytest.approx(
        421, abs=1e-3
    )
    assert after.value("bureau_operation_run_duration_seconds_bucket", **ok, le="30.0") == 2
    assert after.value("bureau_operation_run_duration_seconds_bucket", **ok, le="600.0") == 3
    failed = {"type": "approvals.poll_knox", "outcome": "failed"}
    assert after.value("bureau_operation_runs_completed_total", **failed) == 1
    assert again.value("bureau_operation_runs_completed_total", **ok) == 3
    assert again.value("bureau_operation_run_duration_seconds_sum", **ok) == pytest.approx(
        421, abs=1e-3
    )
