"""Deliveries and their leases: an operator's retry does not take a delivery
a worker is sending, and a delivery whose worker died during its last
attempt is failed by the retry schedule instead of waiting forever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from automation import senders, services
from automation.models import NotificationDelivery
from automation.tasks import retry_deliveries_task
from operations.models import OperationRun
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_api(db):
    client = APIClient()
    client.force_authenticate(UserFactory(username="ops", is_staff=True, is_superuser=True))
    return client


def _in_app(**values) -> NotificationDelivery:
    user = UserFactory()
    return NotificationDelivery.objects.create(
        recipient=str(user.pk),
        recipient_user=user,
        channel="in_app",
        payload={"subject": "s", "message": "m"},
        **values,
    )


def test_a_retry_while_a_worker_holds_the_lease_is_a_409_and_changes_nothing(operator_api):
    # given: a delivery a worker took a moment ago (lease live, attempt counted)
    lease = timezone.now() + timedelta(minutes=2)
    delivery = _in_app(status="retrying", attempts=2, max_attempts=3, lease_until=lease)

    # when: an operator asks for a retry
    response = operator_api.post(f"/api/v1/automation/deliveries/{delivery.pk}/retry/")

    # then: refused as in flight; the worker's claim is untouched
    assert response.status_code == 409, response.data
    assert "in flight" in response.data["detail"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.max_attempts) == ("retrying", 2, 3)
    assert delivery.lease_until == lease


def test_a_retry_after_the_lease_expired_sends_it(operator_api):
    delivery = _in_app(
        status="retrying", attempts=1, lease_until=timezone.now() - timedelta(seconds=1)
    )

    response = operator_api.post(f"/api/v1/automation/deliveries/{delivery.pk}/retry/")

    assert response.status_code == 200, response.data
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)


def test_a_delivery_whose_worker_died_on_its_last_attempt_is_failed_and_counted():
    # given: every attempt used, the last one's lease expired without an outcome,
    # and one whose last attempt is still being sent
    expired = timezone.now() - timedelta(seconds=5)
    dead = _in_app(status="retrying", attempts=3, max_attempts=3, lease_until=expired)
    live = _in_app(
        status="pending",
        attempts=3,
        max_attempts=3,
        lease_until=timezone.now() + timedelta(minutes=2),
    )

    # when: the retry schedule runs
    counts = retry_deliveries_task()

    # then: the abandoned one is failed with a reason, the live one left to its worker
    dead.refresh_from_db()
    live.refresh_from_db()
    assert counts["abandoned_failed"] == 1
    assert dead.status == "failed" and dead.failed_at is not None
    assert "lease expired" in dead.error_message
    assert dead.lease_until is None
    assert live.status == "pending"
    run = OperationRun.objects.filter(type="automation.retry_deliveries").get()
    assert [f["code"] for f in run.failure_summary] == ["automation.delivery_abandoned"]
    assert run.summary_counts["abandoned_failed"] == 1


def test_an_attempt_whose_lease_was_taken_over_leaves_the_new_record(monkeypatch):
    # given: a worker's send that outlives its lease, and meanwhile an
    # operator's retry (allowed: the lease had run out) that took the delivery
    delivery = _in_app(status="pending", max_attempts=3)

    def slow_send(sending):  # stands in for the sender: the race happens while it sends
        NotificationDelivery.objects.filter(pk=sending.pk).update(
            status="retrying", lease_until=None, next_attempt_at=timezone.now()
        )
        return senders.SendResult("delivered")

    monkeypatch.setitem(senders.SENDERS, "in_app", slow_send)

    # when: the first worker's attempt ends
    outcome = services.delivery_send(delivery.pk)

    # then: its outcome is not written over the retry's record
    assert outcome == "skipped"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.delivered_at, delivery.attempts) == ("retrying", None, 1)
