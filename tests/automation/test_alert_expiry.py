"""Alerts past their expires_date are marked expired by a scheduled sweep
(a tracked run), through the same allowed moves as the other alert changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from automation.models import Alert
from automation.tasks import expire_alerts_task
from operations.models import OperationRun
from operations.schedules import sync_schedules
from tests.automation.factories import AlertFactory
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_sweep_expires_live_alerts_past_their_date_and_nothing_else():
    # given
    past = timezone.now() - timedelta(minutes=1)
    active = AlertFactory(expires_date=past)
    acknowledged = AlertFactory(expires_date=past, status="acknowledged")
    resolved = AlertFactory(expires_date=past, status="resolved")
    dismissed = AlertFactory(expires_date=past, status="dismissed")
    later = AlertFactory(expires_date=timezone.now() + timedelta(hours=1))
    forever = AlertFactory()

    # when: the scheduled sweep runs twice
    first = expire_alerts_task()
    second = expire_alerts_task()

    # then: only the live, past-due ones expired, once
    statuses = dict(Alert.objects.values_list("pk", "status"))
    assert statuses == {
        active.pk: "expired",
        acknowledged.pk: "expired",
        resolved.pk: "resolved",
        dismissed.pk: "dismissed",
        later.pk: "active",
        forever.pk: "active",
    }
    assert first == {"expired": 2} and second == {"expired": 0}
    runs = OperationRun.objects.filter(type="automation.expire_alerts").order_by("pk")
    assert [(r.status, r.outcome, r.summary_counts) for r in runs] == [
        ("completed", "succeeded", {"expired": 2}),
        ("completed", "succeeded", {"expired": 0}),
    ]


def test_the_sweep_is_a_bureau_schedule():
    # when
    sync_schedules()

    # then
    schedule = Schedule.objects.get(name="bureau:automation.expire_alerts")
    assert schedule.func == "automation.tasks.expire_alerts_task"
    assert schedule.schedule_type == Schedule.MINUTES and schedule.minutes == 5


def test_an_expired_alert_cannot_be_acknowledged_or_dismissed_from_the_console(client):
    # given: an expired alert
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    alert = AlertFactory(expires_date=timezone.now() - timedelta(minutes=1))
    expire_alerts_task()

    # when
    response = client.post(
        reverse("admin:automation_alert_changelist"),
        {"action": "acknowledge", "_selected_action": [alert.pk]},
        follow=True,
    )

    # then: refused with the current state, unchanged
    assert "is expired; it cannot become acknowledged" in response.content.decode()
    alert.refresh_from_db()
    assert alert.status == "expired"
