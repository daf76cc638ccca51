"""The sms and push channels (seed 002): pluggable backends like Django's
e-mail ones (console, locmem, HTTP), numbers and tokens in each person's
notification profile, and sent / delivered / failed / bounced outcomes. The
HTTP backends are tested against a real local HTTP server."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from automation.backends import push as push_backends
from automation.backends import sms as sms_backends
from automation.models import NotificationDelivery, NotificationProfile
from automation.tasks import retry_deliveries_task
from operations.models import OperationRun
from tests.automation.factories import make_rule
from tests.automation.receivers import Receiver
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

SMS_KEY = "sms-gateway-key-3f9a"
PUSH_KEY = "push-gateway-key-7c21"


@pytest.fixture
def alice():
    user = UserFactory(username="alice")
    NotificationProfile.objects.create(
        user=user, phone_number="+821012345678", push_token="alice-device-token"
    )
    return user


def _notify_rule(*channels: str, users=("alice",), **config):
    return make_rule(
        name="notify",
        actions=[
            {
                "name": "notify",
                "action_type": "send_notification",
                "execution_order": 1,
                "action_config": {
                    "channels": list(channels),
                    "recipients": {"users": list(users)},
                    "subject": "Tenant {{name}}",
                    "message": "It was {{old.name}}.",
                    **config,
                },
            }
        ],
    )


def _rename(capture, *, old="A", new="B"):
    tenant = TenantFactory(name=old)
    with capture(execute=True):
        tenant.name = new
        tenant.save()
    return tenant


def _delivery(channel: str) -> NotificationDelivery:
    return NotificationDelivery.objects.get(channel=channel)


def test_sms_and_push_reach_the_recipient_through_the_configured_backends(
    tenant_entity, alice, django_capture_on_commit_callbacks
):
    # given: a rule notifying alice by SMS and push (the locmem backends, as in tests)
    _notify_rule("sms", "push")

    # when
    tenant = _rename(django_capture_on_commit_callbacks)

    # then: one delivery per channel, each handed to its backend
    sms, push = _delivery("sms"), _delivery("push")
    assert (sms.status, sms.attempts, sms.recipient_user) == ("sent", 1, alice)
    assert (push.status, push.attempts) == ("sent", 1)
    assert [(m.to, m.message) for m in sms_backends.outbox] == [
        ("+821012345678", "Tenant B: It was A.")
    ]
    [message] = push_backends.outbox
    assert (message.token, message.title, message.body) == (
        "alice-device-token",
        "Tenant B",
        "It was A.",
    )
    assert message.data["delivery_id"] == str(push.notification_id)
    assert message.data["entity"] == "operations_tenant"
    assert message.data["object_pk"] == str(tenant.pk)


def test_a_recipient_without_a_number_or_token_gets_a_failed_delivery_saying_so(
    tenant_entity, alice, django_capture_on_commit_callbacks
):
    # given: bob has no notification profile at all
    UserFactory(username="bob")
    _notify_rule("sms", "push", users=("alice", "bob"))

    # when
    _rename(django_capture_on_commit_callbacks)

    # then: alice's are sent; bob's failed at once with the reason, not retried
    rows = {
        (d.channel, d.recipient_user.username): d
        for d in NotificationDelivery.objects.select_related("recipient_user")
    }
    assert rows[("sms", "alice")].status == rows[("push", "alice")].status == "sent"
    bob_sms, bob_push = rows[("sms", "bob")], rows[("push", "bob")]
    assert (bob_sms.status, bob_sms.attempts) == ("failed", 1)
    assert "no phone number" in bob_sms.error_message
    assert (bob_push.status, bob_push.attempts) == ("failed", 1)
    assert "no push token" in bob_push.error_message
    assert len(sms_backends.outbox) == len(push_backends.outbox) == 1


def test_the_console_backends_print_the_messages(
    tenant_entity, alice, settings, capsys, django_capture_on_commit_callbacks
):
    settings.SMS_BACKEND = "automation.backends.sms.ConsoleBackend"
    settings.PUSH_BACKEND = "automation.backends.push.ConsoleBackend"
    _notify_rule("sms", "push")

    _rename(django_capture_on_commit_callbacks)

    out = capsys.readouterr().out
    assert "SMS to +821012345678:\nTenant B: It was A." in out
    assert "Push to alice-device…:\nTenant B\nIt was A." in out
    assert _delivery("sms").status == _delivery("push").status == "sent"


@pytest.fixture
def sms_gateway(settings):
    def configure(receiver):
        settings.SMS_BACKEND = "automation.backends.sms.HTTPBackend"
        settings.SMS_GATEWAY_URL = receiver.url
        settings.SMS_GATEWAY_KEY = SMS_KEY
        settings.AUTOMATION_DELIVERY_BACKOFF_SECONDS = 0

    return configure


@pytest.fixture
def push_gateway(settings):
    def configure(receiver):
        settings.PUSH_BACKEND = "automation.backends.push.HTTPBackend"
        settings.PUSH_GATEWAY_URL = receiver.url
        settings.PUSH_GATEWAY_KEY = PUSH_KEY

    return configure


def test_the_http_sms_backend_posts_to_the_gateway_with_its_key(
    tenant_entity, alice, sms_gateway, django_capture_on_commit_callbacks
):
    with Receiver(ok_body='{"id": "msg-1", "status": "queued"}') as gateway:
        # given: the real HTTP backend pointed at a local gateway
        sms_gateway(gateway)
        _notify_rule("sms")

        # when
        _rename(django_capture_on_commit_callbacks)

    # then: it POSTed {to, message} with the key as a bearer token
    [request] = gateway.requests
    assert request["path"] == "/hooks/bureau"
    assert request["headers"]["Authorization"] == f"Bearer {SMS_KEY}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {"to": "+821012345678", "message": "Tenant B: It was A."}
    delivery = _delivery("sms")
    assert (delivery.status, delivery.sent_at is not None) == ("sent", True)
    assert delivery.provider_response["status_code"] == 200
    assert SMS_KEY not in json.dumps(delivery.provider_response)


def test_a_gateway_that_confirms_delivery_makes_the_delivery_delivered(
    tenant_entity, alice, sms_gateway, django_capture_on_commit_callbacks
):
    with Receiver(ok_body='{"status": "delivered"}') as gateway:
        sms_gateway(gateway)
        _notify_rule("sms")
        _rename(django_capture_on_commit_callbacks)

    delivery = _delivery("sms")
    assert delivery.status == "delivered" and delivery.delivered_at is not None


def test_a_busy_gateway_is_retried(
    tenant_entity, alice, sms_gateway, django_capture_on_commit_callbacks
):
    # given: a gateway that is busy once
    with Receiver(fail_first=1, fail_status=503) as gateway:
        sms_gateway(gateway)
        _notify_rule("sms")

        # when: the first attempt and then the retry schedule
        _rename(django_capture_on_commit_callbacks)
        first = _delivery("sms").status
        counts = retry_deliveries_task()

    # then
    assert first == "retrying"
    assert counts["sent"] == 1
    assert (_delivery("sms").status, _delivery("sms").attempts) == ("sent", 2)
    assert len(gateway.requests) == 2


def test_a_gateway_refusing_the_message_for_good_bounces_it(
    tenant_entity, alice, sms_gateway, django_capture_on_commit_callbacks
):
    # given: a gateway that refuses the number for good
    with Receiver(fail_first=99, fail_status=400, fail_body='{"error": "invalid number"}') as gw:
        sms_gateway(gw)
        _notify_rule("sms")

        # when: it is sent, then the retry schedule runs
        _rename(django_capture_on_commit_callbacks)
        after = retry_deliveries_task()

    # then: bounced at once, never retried
    delivery = _delivery("sms")
    assert (delivery.status, delivery.attempts) == ("bounced", 1)
    assert delivery.failed_at is not None and delivery.next_attempt_at is None
    assert "refused the message for good (HTTP 400)" in delivery.error_message
    assert len(gw.requests) == 1 and after["attempted"] == 0


def test_a_gateway_refusing_our_key_fails_without_retrying_or_showing_the_key(
    tenant_entity, alice, sms_gateway, django_capture_on_commit_callbacks
):
    with Receiver(fail_first=99, fail_status=401, fail_body="bad key") as gateway:
        sms_gateway(gateway)
        _notify_rule("sms")
        _rename(django_capture_on_commit_callbacks)

    delivery = _delivery("sms")
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "refused our key (HTTP 401)" in delivery.error_message
    assert SMS_KEY not in delivery.error_message + json.dumps(delivery.provider_response)


@pytest.mark.parametrize(
    ("url", "key", "named"),
    [
        ("", SMS_KEY, "SMS_GATEWAY_URL is not set"),
        ("http://sms.example.com/send", SMS_KEY, "must be an https URL"),
        ("https://sms.example.com/send", "", "SMS_GATEWAY_KEY is not set"),
    ],
)
def test_a_gateway_that_is_not_configured_fails_the_delivery_with_the_reason(
    tenant_entity, alice, settings, django_capture_on_commit_callbacks, url, key, named
):
    settings.SMS_BACKEND = "automation.backends.sms.HTTPBackend"
    settings.SMS_GATEWAY_URL = url
    settings.SMS_GATEWAY_KEY = key
    _notify_rule("sms")

    _rename(django_capture_on_commit_callbacks)

    delivery = _delivery("sms")
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert named in delivery.error_message


def test_the_http_push_backend_posts_an_fcm_style_notification(
    tenant_entity, alice, push_gateway, django_capture_on_commit_callbacks
):
    with Receiver(ok_body='{"success": 1, "failure": 0, "results": [{"message_id": "m1"}]}') as gw:
        push_gateway(gw)
        _notify_rule("push")
        tenant = _rename(django_capture_on_commit_callbacks)

    [request] = gw.requests
    assert request["headers"]["Authorization"] == f"Bearer {PUSH_KEY}"
    body = json.loads(request["body"])
    delivery = _delivery("push")
    assert body["to"] == "alice-device-token"
    assert body["notification"] == {"title": "Tenant B", "body": "It was A."}
    assert body["data"]["delivery_id"] == str(delivery.notification_id)
    assert body["data"]["object_pk"] == str(tenant.pk)
    assert all(isinstance(v, str) for v in body["data"].values())
    assert delivery.status == "sent"


@pytest.mark.parametrize(
    ("status", "reply"),
    [
        (200, '{"success": 0, "failure": 1, "results": [{"error": "NotRegistered"}]}'),
        (404, '{"error": {"status": "NOT_FOUND"}}'),
        (410, "gone"),
    ],
)
def test_a_push_token_the_service_does_not_know_bounces(
    tenant_entity, alice, push_gateway, django_capture_on_commit_callbacks, status, reply
):
    with Receiver(ok_status=status, ok_body=reply) as gw:
        push_gateway(gw)
        _notify_rule("push")
        _rename(django_capture_on_commit_callbacks)

    delivery = _delivery("push")
    assert (delivery.status, delivery.attempts) == ("bounced", 1)
    assert delivery.failed_at is not None


def test_the_retry_run_counts_bounces(
    tenant_entity, alice, sms_gateway, django_capture_on_commit_callbacks
):
    # given: a delivery waiting for its retry, and a gateway that now refuses it for good
    with Receiver(fail_first=99, fail_status=503) as busy:
        sms_gateway(busy)
        _notify_rule("sms")
        _rename(django_capture_on_commit_callbacks)
    assert _delivery("sms").status == "retrying"

    with Receiver(fail_first=99, fail_status=422, fail_body="unreachable") as refusing:
        sms_gateway(refusing)
        counts = retry_deliveries_task()

    run = OperationRun.objects.get(type="automation.retry_deliveries")
    assert counts["bounced"] == 1
    assert run.summary_counts["bounced"] == 1
    assert [f["code"] for f in run.failure_summary] == ["automation.delivery_bounced"]


def test_sms_and_push_need_recipients_when_a_rule_is_saved(tenant_entity):
    api = APIClient()
    api.force_authenticate(UserFactory(is_staff=True, is_superuser=True))

    response = api.post(
        "/api/v1/automation/rules/",
        {
            "name": "no one",
            "entity": "operations_tenant",
            "trigger_type": "on_update",
            "actions": [
                {
                    "action_type": "send_notification",
                    "execution_order": 1,
                    "action_config": {"channels": ["sms", "push"], "message": "m"},
                }
            ],
        },
        format="json",
    )

    assert response.status_code == 400
    assert "recipients needs a user or role for push, sms" in " ".join(response.data["actions"])


def test_operators_keep_numbers_and_tokens_in_the_admin(client):
    # given
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    bob = UserFactory(username="bob")
    url = reverse("admin:automation_notificationprofile_add")

    # when: a number not in international form, then a good one
    refused = client.post(url, {"user": bob.pk, "phone_number": "010-1234-5678"})
    saved = client.post(
        url, {"user": bob.pk, "phone_number": "+821098765432", "push_token": "bob-token"}
    )

    # then
    assert refused.status_code == 200
    assert "international form" in refused.content.decode()
    assert saved.status_code == 302
    assert NotificationProfile.objects.get(user=bob).phone_number == "+821098765432"
