"""E-mail through Django's SMTP backend to a real local SMTP server
(aiosmtpd): accepted mail is ``sent``, a permanent refusal (SMTP 5xx, at RCPT
or at DATA) is ``bounced`` and never retried, a temporary one (4xx) is
retried."""

from __future__ import annotations

import pytest

from automation.models import NotificationDelivery
from automation.tasks import retry_deliveries_task
from tests.automation.factories import make_rule
from tests.automation.receivers import SMTPReceiver
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings):
    with SMTPReceiver() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = server.port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_TIMEOUT = 5
        settings.AUTOMATION_DELIVERY_BACKOFF_SECONDS = 0
        yield server


def _mail_rule(address: str, *, subject: str = "Tenant {{name}}"):
    UserFactory(username="reader", email=address)
    make_rule(
        name="mail",
        actions=[
            {
                "name": "mail",
                "action_type": "send_notification",
                "execution_order": 1,
                "action_config": {
                    "channels": ["email"],
                    "recipients": {"users": ["reader"]},
                    "subject": subject,
                    "message": "It was {{old.name}}.",
                },
            }
        ],
    )


def _rename(capture):
    tenant = TenantFactory(name="A")
    with capture(execute=True):
        tenant.name = "B"
        tenant.save()


def test_mail_the_server_accepts_is_sent(tenant_entity, smtp, django_capture_on_commit_callbacks):
    _mail_rule("ok@example.com")

    _rename(django_capture_on_commit_callbacks)

    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    [envelope] = smtp.messages
    assert envelope.rcpt_tos == ["ok@example.com"]
    assert b"Subject: Tenant B" in envelope.content


def test_a_recipient_refused_with_550_bounces_and_is_not_retried(
    tenant_entity, smtp, django_capture_on_commit_callbacks
):
    # given: a mailbox the server says does not exist
    _mail_rule("gone@example.com")

    # when: it is sent, then the retry schedule runs
    _rename(django_capture_on_commit_callbacks)
    counts = retry_deliveries_task()

    # then
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("bounced", 1)
    assert delivery.failed_at is not None and delivery.next_attempt_at is None
    assert "refused the message for good" in delivery.error_message
    assert "SMTP 550" in delivery.error_message
    assert "gone@example.com" not in delivery.error_message  # addresses are redacted
    assert delivery.provider_response["smtp_code"] == 550
    assert counts["attempted"] == 0 and smtp.messages == []


def test_a_message_refused_at_data_with_554_bounces(
    tenant_entity, smtp, django_capture_on_commit_callbacks
):
    _mail_rule("ok@example.com", subject="[reject] Tenant {{name}}")

    _rename(django_capture_on_commit_callbacks)

    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("bounced", 1)
    assert "SMTP 554" in delivery.error_message


def test_a_temporary_refusal_451_is_retried(
    tenant_entity, smtp, django_capture_on_commit_callbacks
):
    _mail_rule("busy@example.com")

    _rename(django_capture_on_commit_callbacks)
    delivery = NotificationDelivery.objects.get()
    first = (delivery.status, delivery.attempts)
    retry_deliveries_task()
    delivery.refresh_from_db()

    assert first == ("retrying", 1)
    assert (delivery.status, delivery.attempts) == ("retrying", 2)
    assert "refused the message for now" in delivery.error_message
    assert "SMTP 451" in delivery.error_message
