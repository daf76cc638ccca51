"""Automation's state machines (automation/choices.py) and the moves made
through config/transitions.py: every alert move is recorded with who or what
made it and why; a move the machine does not have is refused and writes
nothing; deliveries, events and executions move by conditional UPDATEs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from automation.choices import (
    ALERT_STATES,
    CLOSED_ALERT_STATUSES,
    DELIVERY_STATES,
    EVENT_STATES,
    EXECUTION_STATES,
    AlertStatus,
    DeliveryStatus,
    EventStatus,
    ExecutionStatus,
)
from automation.engine import event_replay, outbox_process
from automation.models import Alert, AlertStatusChange, AutomationEvent, AutomationExecution
from automation.services import alert_acknowledge, alert_set_status_by_operator, alerts_expire
from config.errors import InvalidTransition
from tests.automation.factories import AlertFactory, AlertRecipientFactory, alert_action, make_rule
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return UserFactory(username="operator", is_staff=True, is_superuser=True)


def _history(alert) -> list[tuple[str, str, str, str]]:
    return [
        (c.from_status, c.to_status, c.actor_name, c.reason)
        for c in AlertStatusChange.objects.filter(alert=alert)
    ]


def test_the_machines_know_the_moves():
    assert ALERT_STATES.sources(AlertStatus.EXPIRED) == (
        AlertStatus.ACKNOWLEDGED,
        AlertStatus.ACTIVE,
    )
    assert set(CLOSED_ALERT_STATUSES) == {"dismissed", "resolved", "expired"}
    assert DELIVERY_STATES.sources(DeliveryStatus.RETRYING) == (
        "bounced",
        "failed",
        "pending",
        "retrying",
    )
    assert not DELIVERY_STATES.allows(DeliveryStatus.SENT, DeliveryStatus.RETRYING)
    assert EVENT_STATES.allows(EventStatus.FAILED, EventStatus.PROCESSED)  # a replay
    assert not EVENT_STATES.allows(EventStatus.PROCESSED, EventStatus.PENDING)
    assert not EXECUTION_STATES.allows(ExecutionStatus.SKIPPED, ExecutionStatus.SUCCESS)


def test_a_recipients_acknowledgement_moves_the_alert_and_says_who(operator):
    # given: an active alert for alice
    alice = UserFactory(username="alice")
    alert = AlertFactory()
    AlertRecipientFactory(alert=alert, user=alice)

    # when
    alert_acknowledge(alert_id=alert.pk, user=alice)

    # then
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    assert _history(alert) == [("active", "acknowledged", "alice", "acknowledged by a recipient")]
    assert AlertStatusChange.objects.get(alert=alert).actor == alice


def test_an_operators_dismissal_is_recorded_and_a_move_the_machine_lacks_is_refused(operator):
    dismissed, expired = AlertFactory(), AlertFactory(status="expired")

    alert_set_status_by_operator(alert=dismissed, status="dismissed", actor=operator)
    with pytest.raises(InvalidTransition) as refused:
        alert_set_status_by_operator(alert=expired, status="acknowledged", actor=operator)

    assert _history(dismissed) == [("active", "dismissed", "operator", "from the operator console")]
    assert (refused.value.code, refused.value.current) == ("automation.alert_transition", "expired")
    expired.refresh_from_db()
    assert expired.status == "expired" and _history(expired) == []
    assert not expired.acknowledgements.exists()


def test_a_rule_resolving_its_earlier_alert_names_itself(tenant_entity):
    rule = make_rule(name="renamed", actions=[alert_action(resolve_prior=True)])
    tenant = TenantFactory()
    for name in ("one", "two"):
        tenant.name = name
        tenant.save()
        outbox_process()

    first = Alert.objects.get(title="Tenant one changed")
    second_execution = AutomationExecution.objects.filter(rule=rule).order_by("id").last()
    assert first.status == "resolved"
    assert _history(first) == [
        (
            "active",
            "resolved",
            "system",
            f"resolved by rule 'renamed' (execution {second_execution.pk})",
        )
    ]


def test_the_expiry_sweep_records_each_alert_it_expires():
    past = timezone.now() - timedelta(minutes=1)
    active, acknowledged = (
        AlertFactory(expires_date=past),
        AlertFactory(expires_date=past, status="acknowledged"),
    )

    assert alerts_expire() == 2

    assert _history(active) == [("active", "expired", "system", "its expiry date passed")]
    assert _history(acknowledged) == [
        ("acknowledged", "expired", "system", "its expiry date passed")
    ]


def test_the_alert_page_shows_its_status_history(client, operator):
    alert = AlertFactory()
    alert_set_status_by_operator(alert=alert, status="acknowledged", actor=operator)
    client.force_login(operator)

    page = client.get(reverse("admin:automation_alert_change", args=[alert.pk]))

    assert page.status_code == 200
    assert "status history" in page.content.decode().lower()
    assert "from the operator console" in page.content.decode()


def test_a_replay_moves_a_failed_event_to_processed(tenant_entity, settings):
    # given: an event that failed after its last attempt
    settings.AUTOMATION_EVENT_MAX_ATTEMPTS = 1
    make_rule(name="any", actions=[alert_action()])
    tenant = TenantFactory()
    tenant.name = "x"
    tenant.save()
    event = AutomationEvent.objects.get()
    AutomationEvent.objects.filter(pk=event.pk).update(status="failed", attempts=1)

    # when
    counts = event_replay(event.pk)

    # then
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("processed", 2)
    assert counts["executions"] == 1
