"""send_notification: one delivery per recipient and channel, sent after
commit; a real local webhook receiver that fails first is retried with
backoff until it accepts, and a receiver that keeps failing ends failed."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.core import mail
from django.core.management import call_command

from automation.models import AutomationExecution, NotificationDelivery
from automation.senders import SIGNATURE_HEADER
from automation.services import backoff_delay
from automation.tasks import retry_deliveries_task
from operations.models import OperationRun
from tests.automation.factories import GroupFactory, make_rule
from tests.automation.receivers import Receiver
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def _webhook_rule(url: str, **config):
    return make_rule(
        name="hook",
        actions=[
            {
                "name": "notify",
                "action_type": "send_notification",
                "execution_order": 1,
                "action_config": {
                    "channels": ["webhook"],
                    "webhook_url": url,
                    "subject": "Tenant {{name}}",
                    "message": "Tenant {{id}} renamed to {{name}}.",
                    **config,
                },
            }
        ],
    )


def _rename(tenant, name, capture):
    with capture(execute=True):
        tenant.name = name
        tenant.save()


def test_a_failing_webhook_is_retried_with_backoff_then_delivered(
    tenant_entity, fast_backoff, django_capture_on_commit_callbacks
):
    with Receiver(fail_first=2) as receiver:
        # given: a webhook rule and a receiver that answers 503 twice
        _webhook_rule(receiver.url, max_attempts=4)
        tenant = TenantFactory(name="Old")

        # when: the change commits (first attempt), then the retry schedule runs twice
        _rename(tenant, "New", django_capture_on_commit_callbacks)
        delivery = NotificationDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("retrying", 1)
        assert delivery.provider_response["status_code"] == 503
        assert "HTTP 503" in delivery.error_message
        first = retry_deliveries_task()
        second = retry_deliveries_task()

    # then
    delivery.refresh_from_db()
    assert first["retrying"] == 1 and second["delivered"] == 1
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert delivery.delivered_at is not None and delivery.error_message == ""
    assert delivery.recipient == receiver.url
    assert len(receiver.requests) == 3
    last = receiver.requests[-1]
    expected = (
        "sha256=" + hmac.new(b"test-webhook-secret", last["body"], hashlib.sha256).hexdigest()
    )
    assert last["headers"][SIGNATURE_HEADER] == expected
    payload = json.loads(last["body"])
    assert payload["message"] == f"Tenant {tenant.pk} renamed to New."
    assert payload["delivery_id"] == str(delivery.notification_id)
    assert OperationRun.objects.filter(type="automation.retry_deliveries").count() == 2


def test_a_webhook_that_keeps_failing_ends_failed_after_max_attempts(
    tenant_entity, fast_backoff, django_capture_on_commit_callbacks
):
    leaky = "upstream said token=abcdef0123456789 for admin@example.com"
    with Receiver(fail_first=99, fail_status=500, fail_body=leaky) as receiver:
        _webhook_rule(receiver.url, max_attempts=3)
        _rename(TenantFactory(), "x", django_capture_on_commit_callbacks)
        retry_deliveries_task()
        retry_deliveries_task()
        retry_deliveries_task()  # nothing left to do

    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.failed_at is not None
    assert len(receiver.requests) == 3
    stored = json.dumps(delivery.provider_response)
    assert "abcdef0123456789" not in stored and "admin@example.com" not in stored
    assert "[REDACTED]" in stored


def test_a_client_error_is_not_retried(
    tenant_entity, fast_backoff, django_capture_on_commit_callbacks
):
    with Receiver(fail_first=99, fail_status=404) as receiver:
        _webhook_rule(receiver.url)
        _rename(TenantFactory(), "x", django_capture_on_commit_callbacks)

    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert len(receiver.requests) == 1


def test_a_failed_delivery_can_be_retried_by_hand(
    tenant_entity, fast_backoff, django_capture_on_commit_callbacks
):
    with Receiver(fail_first=1, fail_status=404) as receiver:
        _webhook_rule(receiver.url)
        _rename(TenantFactory(), "x", django_capture_on_commit_callbacks)
        delivery = NotificationDelivery.objects.get()
        assert delivery.status == "failed"

        call_command("automation_retry_deliveries", "--id", str(delivery.pk), verbosity=0)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)


def test_backoff_doubles_up_to_the_maximum(settings):
    settings.AUTOMATION_DELIVERY_BACKOFF_SECONDS = 10
    settings.AUTOMATION_DELIVERY_BACKOFF_MAX_SECONDS = 60
    assert [backoff_delay(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


def test_email_and_in_app_make_one_delivery_per_recipient_and_channel(
    tenant_entity, django_capture_on_commit_callbacks
):
    # given: a user named directly and a role with two members (one also named)
    alice = UserFactory(username="alice", email="alice@example.com")
    bob = UserFactory(username="bob", email="bob@example.com")
    role = GroupFactory(name="ops")
    alice.groups.add(role)
    bob.groups.add(role)
    make_rule(
        name="mail",
        actions=[
            {
                "name": "notify",
                "action_type": "send_notification",
                "execution_order": 1,
                "action_config": {
                    "channels": ["email", "in_app"],
                    "recipients": {"users": ["alice"], "roles": ["ops"]},
                    "subject": "Tenant {{name}} changed",
                    "message": "It was {{old.name}}.",
                },
            }
        ],
    )

    _rename(TenantFactory(name="A"), "B", django_capture_on_commit_callbacks)

    deliveries = NotificationDelivery.objects.order_by("channel", "recipient")
    assert [(d.channel, d.recipient_user.username, d.status) for d in deliveries] == [
        ("email", "alice", "sent"),
        ("email", "bob", "sent"),
        ("in_app", "alice", "delivered"),
        ("in_app", "bob", "delivered"),
    ]
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.com", "bob@example.com"]
    assert mail.outbox[0].subject == "Tenant B changed"
    assert mail.outbox[0].body == "It was A."
    execution = AutomationExecution.objects.get()
    assert sorted(execution.actions_executed[0]["result"]["deliveries"]) == sorted(
        d.pk for d in deliveries
    )
