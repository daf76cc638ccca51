"""Deliveries and their leases: an operator's retry does not take a delivery
a worker is sending; a delivery whose worker died mid-send is sent again by
another worker (its attempt given back, the same idempotency key), and failed
only when its workers keep dying; a large backlog is sent by several tasks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from automation import senders, services
from automation.actions import notifications
from automation.models import NotificationDelivery
from automation.senders import IDEMPOTENCY_HEADER
from automation.tasks import retry_deliveries_task
from operations.models import OperationRun
from tests.automation.receivers import Receiver
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


def test_a_delivery_whose_worker_died_on_its_last_attempt_is_sent_again_not_failed():
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

    # then: the abandoned attempt is given back and the delivery sent again;
    # the live one is left to its worker
    dead.refresh_from_db()
    live.refresh_from_db()
    assert (counts["released"], counts["abandoned_failed"], counts["delivered"]) == (1, 0, 1)
    assert (dead.status, dead.attempts, dead.max_attempts) == ("delivered", 4, 4)
    assert dead.abandoned_attempts == 1 and dead.lease_until is None
    assert (live.status, live.attempts, live.abandoned_attempts) == ("pending", 3, 0)
    run = OperationRun.objects.filter(type="automation.retry_deliveries").get()
    assert run.failure_summary == []
    assert run.summary_counts["released"] == 1


def test_a_delivery_whose_worker_keeps_dying_is_failed_after_the_limit(settings):
    # given: a delivery whose worker died twice already, and dies again (lease expired)
    settings.AUTOMATION_DELIVERY_MAX_ABANDONED = 3
    expired = timezone.now() - timedelta(seconds=5)
    dead = _in_app(
        status="retrying", attempts=3, max_attempts=5, abandoned_attempts=2, lease_until=expired
    )

    # when
    counts = retry_deliveries_task()

    # then: not sent a fourth time, failed with the reason, and the run says so
    dead.refresh_from_db()
    assert (counts["released"], counts["abandoned_failed"], counts["attempted"]) == (0, 1, 0)
    assert (dead.status, dead.attempts, dead.abandoned_attempts) == ("failed", 3, 3)
    assert "lease expired" in dead.error_message and dead.failed_at is not None
    run = OperationRun.objects.filter(type="automation.retry_deliveries").get()
    assert [f["code"] for f in run.failure_summary] == ["automation.delivery_abandoned"]


def test_a_webhook_sent_again_after_its_worker_died_carries_the_same_idempotency_key(
    fast_backoff,
):
    # given: a webhook delivery whose first attempt's worker died (the
    # receiver may have had it: attempt counted, lease expired, no outcome)
    with Receiver() as receiver:
        delivery = NotificationDelivery.objects.create(
            recipient=receiver.url,
            channel="webhook",
            payload={"url": receiver.url, "body": {"message": "m"}},
            attempts=1,
            lease_until=timezone.now() - timedelta(seconds=1),
        )

        # when: the retry schedule releases it and another attempt is sent
        counts = retry_deliveries_task()

    # then: sent once more, keyed by the delivery's notification id
    delivery.refresh_from_db()
    assert (counts["released"], counts["delivered"]) == (1, 1)
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    [request] = receiver.requests
    assert request["headers"][IDEMPOTENCY_HEADER] == str(delivery.notification_id)
    assert request["headers"]["X-Bureau-Attempt"] == "2"


def test_a_worker_taking_over_an_expired_lease_counts_the_dead_attempt():
    # given: a due delivery whose lease expired (its worker died mid-send)
    delivery = _in_app(
        status="pending", attempts=1, lease_until=timezone.now() - timedelta(seconds=1)
    )

    # when: another worker sends it before the sweep ran
    outcome = services.delivery_send(delivery.pk)

    # then: sent, and the dead attempt counted toward the limit
    delivery.refresh_from_db()
    assert outcome == "delivered"
    assert (delivery.attempts, delivery.abandoned_attempts) == (2, 1)


def test_the_retry_schedule_splits_a_large_backlog_into_sending_tasks(settings, monkeypatch):
    # given: 45 due deliveries and sending tasks of 20
    settings.AUTOMATION_DELIVERY_TASK_SIZE = 20
    deliveries = [_in_app(status="pending") for _ in range(45)]
    queued: list[list[int]] = []
    real_async_task = notifications.async_task

    def recording_async_task(func, ids, **kwargs):  # a spy: the task still runs (sync mode)
        queued.append(list(ids))
        return real_async_task(func, ids, **kwargs)

    monkeypatch.setattr(notifications, "async_task", recording_async_task)

    # when
    counts = retry_deliveries_task()

    # then: the first 20 sent by the schedule's run, the other 25 by two tasks of their own
    assert (counts["delivered"], counts["queued"]) == (20, 25)
    assert [len(ids) for ids in queued] == [20, 5]
    assert (
        NotificationDelivery.objects.filter(
            pk__in=[d.pk for d in deliveries], status="delivered"
        ).count()
        == 45
    )


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
