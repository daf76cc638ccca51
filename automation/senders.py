"""How a delivery reaches its recipient, one sender per channel: e-mail
(Django's mail backend), SMS and push (pluggable backends), in-app (the row
itself), webhook (a signed POST). A sender sends and says what happened; it
writes nothing (the delivery service records the outcome).

A failure that may pass (connection error, timeout, 408/425/429/5xx, SMTP
4xx) is ``retryable``; a permanent refusal by the provider (SMTP 5xx, a
gateway's 4xx, an unknown push token) is ``bounced``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
from dataclasses import dataclass, field
from typing import Any

import requests
from django.core.mail import EmailMessage, get_connection

from automation import conf
from automation.backends import (
    DeliveryError,
    PermanentRefusal,
    PushMessage,
    SMSMessage,
    get_push_backend,
    get_sms_backend,
)
from automation.backends.http import RETRYABLE_HTTP, sanitized_response
from automation.choices import DeliveryChannel, DeliveryStatus
from automation.models import NotificationDelivery, NotificationProfile

SIGNATURE_HEADER = "X-Bureau-Signature-256"
# The same on every attempt at one delivery (its notification_id), also when a
# worker died mid-send and another sends it again: a receiver drops repeats by it.
IDEMPOTENCY_HEADER = "Idempotency-Key"
_session = requests.Session()


@dataclass
class SendResult:
    status: str  # delivered | sent | failed | bounced
    retryable: bool = False
    error: str = ""
    provider_response: dict[str, Any] = field(default_factory=dict)


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _send_webhook(delivery: NotificationDelivery) -> SendResult:
    payload = delivery.payload
    source = payload.get("secret_env") or None
    try:
        secret = conf.webhook_secret(source)
    except ValueError:
        # A delivery written before sources were checked: never sign with it.
        return SendResult(
            DeliveryStatus.FAILED,
            error=f"{str(source)[:100]!r} is not a webhook secret "
            f"(use one of {', '.join(conf.webhook_secret_sources())}).",
        )
    if not secret:
        name = source or conf.DEFAULT_WEBHOOK_SECRET
        return SendResult(DeliveryStatus.FAILED, error=f"No webhook secret configured ({name}).")
    body = json.dumps(
        {**payload.get("body", {}), "delivery_id": str(delivery.notification_id)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Bureau-Automation/1",
        "X-Bureau-Delivery": str(delivery.notification_id),
        IDEMPOTENCY_HEADER: str(delivery.notification_id),
        "X-Bureau-Attempt": str(delivery.attempts),
        SIGNATURE_HEADER: sign(body, secret),
    }
    try:
        response = _session.post(
            payload["url"], data=body, headers=headers, timeout=conf.webhook_timeout_seconds()
        )
    except requests.RequestException as error:
        return SendResult(
            DeliveryStatus.FAILED,
            retryable=True,
            error=f"{type(error).__name__}: {error}",
            provider_response={"exception": type(error).__name__},
        )
    provider = sanitized_response(response)
    if 200 <= response.status_code < 300:
        return SendResult(DeliveryStatus.DELIVERED, provider_response=provider)
    retryable = response.status_code >= 500 or response.status_code in RETRYABLE_HTTP
    return SendResult(
        DeliveryStatus.FAILED,
        retryable=retryable,
        error=f"HTTP {response.status_code} from the webhook receiver.",
        provider_response=provider,
    )


def _send_email(delivery: NotificationDelivery) -> SendResult:
    user = delivery.recipient_user
    if user is None or not user.email:
        return SendResult(DeliveryStatus.FAILED, error="The recipient has no e-mail address.")
    message = EmailMessage(
        subject=delivery.payload.get("subject", ""),
        body=delivery.payload.get("message", ""),
        from_email=conf.from_email(),
        to=[user.email],
        connection=get_connection(fail_silently=False),
    )
    try:
        accepted = message.send()
    except (smtplib.SMTPException, OSError) as error:
        return _smtp_failure(error)
    # The mail server accepted it; whether it reached the inbox is not known.
    return SendResult(DeliveryStatus.SENT, provider_response={"accepted": accepted})


def _smtp_failure(error: Exception) -> SendResult:
    """A 5xx answer is the server refusing the message for good (bounced); a
    4xx, a dropped connection or a refused login may pass (retried)."""
    provider: dict[str, Any] = {"exception": type(error).__name__}
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _text in error.recipients.values()]
        texts = [_smtp_text(text) for _code, text in error.recipients.values()]
        code = max(codes) if codes else 0
        permanent = bool(codes) and all(500 <= c < 600 for c in codes)
        detail = f"the recipient was refused (SMTP {code}: {'; '.join(texts)})"
    elif isinstance(error, smtplib.SMTPResponseException) and not isinstance(
        error, smtplib.SMTPAuthenticationError
    ):
        code = error.smtp_code
        permanent = 500 <= code < 600
        detail = f"SMTP {code}: {_smtp_text(error.smtp_error)}"
    else:
        return SendResult(
            DeliveryStatus.FAILED,
            retryable=True,
            error=f"{type(error).__name__}: {error}",
            provider_response=provider,
        )
    provider["smtp_code"] = code
    if permanent:
        return SendResult(
            DeliveryStatus.BOUNCED,
            error=f"The mail server refused the message for good: {detail}.",
            provider_response=provider,
        )
    return SendResult(
        DeliveryStatus.FAILED,
        retryable=True,
        error=f"The mail server refused the message for now: {detail}.",
        provider_response=provider,
    )


def _smtp_text(text: bytes | str) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def _profile(user) -> NotificationProfile | None:
    try:
        return user.notification_profile
    except NotificationProfile.DoesNotExist:
        return None


def _hand_over(backend, message) -> SendResult:
    try:
        provider = backend.send(message)
    except PermanentRefusal as refused:
        return SendResult(
            DeliveryStatus.BOUNCED,
            error=refused.message,
            provider_response=refused.provider_response,
        )
    except DeliveryError as error:
        return SendResult(
            DeliveryStatus.FAILED,
            retryable=error.retryable,
            error=error.message,
            provider_response=error.provider_response,
        )
    status = DeliveryStatus.DELIVERED if provider.get("delivered") else DeliveryStatus.SENT
    return SendResult(status, provider_response=provider)


def _send_sms(delivery: NotificationDelivery) -> SendResult:
    user = delivery.recipient_user
    profile = _profile(user) if user is not None else None
    if profile is None or not profile.phone_number:
        return SendResult(
            DeliveryStatus.FAILED,
            error="The recipient has no phone number (Automation → Notification profiles).",
        )
    subject = delivery.payload.get("subject", "")
    text = delivery.payload.get("message", "")
    return _hand_over(
        get_sms_backend(),
        SMSMessage(
            to=profile.phone_number,
            message=f"{subject}: {text}" if subject else text,
            reference=str(delivery.notification_id),
        ),
    )


def _send_push(delivery: NotificationDelivery) -> SendResult:
    user = delivery.recipient_user
    profile = _profile(user) if user is not None else None
    if profile is None or not profile.push_token:
        return SendResult(
            DeliveryStatus.FAILED,
            error="The recipient has no push token (Automation → Notification profiles).",
        )
    data = {key: str(value) for key, value in (delivery.payload.get("data") or {}).items()}
    return _hand_over(
        get_push_backend(),
        PushMessage(
            token=profile.push_token,
            title=delivery.payload.get("subject", ""),
            body=delivery.payload.get("message", ""),
            data={**data, "delivery_id": str(delivery.notification_id)},
        ),
    )


def _send_in_app(delivery: NotificationDelivery) -> SendResult:
    # The delivery row is the in-app notification: the recipient reads it
    # through GET /api/v1/automation/deliveries/?channel=in_app.
    return SendResult(DeliveryStatus.DELIVERED, provider_response={"stored": True})


SENDERS = {
    DeliveryChannel.EMAIL: _send_email,
    DeliveryChannel.SMS: _send_sms,
    DeliveryChannel.PUSH: _send_push,
    DeliveryChannel.IN_APP: _send_in_app,
    DeliveryChannel.WEBHOOK: _send_webhook,
}
