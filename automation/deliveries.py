"""Sending notification deliveries: e-mail, SMS, push, in-app, webhook.

A worker takes a delivery with a conditional UPDATE (sendable status, due,
no live lease) that also counts the attempt, sends outside any transaction,
then records the outcome. A failure that may pass (connection error,
timeout, 408/425/429/5xx, SMTP 4xx) is retried with exponential backoff
until ``max_attempts``, then the delivery is ``failed``; a permanent refusal
by the provider (SMTP 5xx, a gateway's 4xx, an unknown push token) makes it
``bounced``; any other failure fails it at once. Provider responses and
errors are stored sanitised.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn

import requests
from django.core.mail import EmailMessage, get_connection
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

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
from automation.choices import (
    RETRYABLE_BY_HAND_STATUSES,
    SENDABLE_DELIVERY_STATUSES,
    DeliveryChannel,
    DeliveryStatus,
)
from automation.models import NotificationDelivery, NotificationProfile
from automation.permissions import RETRY_DELIVERY, require
from config.errors import Conflict, InvalidTransition, NotFound
from config.transitions import transition_if
from operations.sanitize import sanitize_message

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Bureau-Signature-256"
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


def backoff_delay(attempts: int) -> timedelta:
    seconds = conf.delivery_backoff_seconds() * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, conf.delivery_backoff_max_seconds()))


def _claim(delivery_id: int, now) -> datetime | None:
    """Take the delivery for one attempt: one conditional UPDATE (sendable,
    due, attempts left, no live lease) that counts the attempt and sets our
    lease (not a state change). The lease, or None when it was not ours to take."""
    lease = now + timedelta(seconds=conf.delivery_lease_seconds())
    claimed = (
        NotificationDelivery.objects.filter(
            pk=delivery_id, status__in=SENDABLE_DELIVERY_STATUSES, attempts__lt=F("max_attempts")
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=lease, attempts=F("attempts") + 1, updated_date=now)
    )
    return lease if claimed else None


def _outcome(result: SendResult, delivery: NotificationDelivery, done) -> tuple[str, dict]:
    """The state an attempt's result moves the delivery to, and the fields beside it."""
    values: dict[str, Any] = {
        "lease_until": None,
        "provider_response": result.provider_response or None,
        "error_message": sanitize_message(result.error) if result.error else "",
    }
    if result.status == DeliveryStatus.DELIVERED:
        return DeliveryStatus.DELIVERED, {**values, "sent_at": done, "delivered_at": done}
    if result.status == DeliveryStatus.SENT:
        return DeliveryStatus.SENT, {**values, "sent_at": done}
    if result.status == DeliveryStatus.BOUNCED:
        return DeliveryStatus.BOUNCED, {**values, "failed_at": done, "next_attempt_at": None}
    if result.retryable and delivery.attempts < delivery.max_attempts:
        retry_at = done + backoff_delay(delivery.attempts)
        return DeliveryStatus.RETRYING, {**values, "next_attempt_at": retry_at}
    return DeliveryStatus.FAILED, {**values, "failed_at": done, "next_attempt_at": None}


def send_delivery(delivery_id: int) -> str:
    """One attempt at one delivery: returns its new status, or ``"skipped"``
    when it is not due, already final, or another worker holds it. Sending
    happens outside any transaction; the outcome is recorded only while our
    lease still holds it (a conditional UPDATE guarded by the lease)."""
    now = timezone.now()
    lease = _claim(delivery_id, now)
    if lease is None:
        return "skipped"
    delivery = NotificationDelivery.objects.select_related("recipient_user").get(pk=delivery_id)
    try:
        result = SENDERS[delivery.channel](delivery)
    except Exception as error:  # noqa: BLE001 - a sender bug must not lose the delivery
        logger.exception("delivery %s raised", delivery_id)
        result = SendResult(
            DeliveryStatus.FAILED, retryable=True, error=f"{type(error).__name__}: {error}"
        )
    status, values = _outcome(result, delivery, timezone.now())
    try:
        transition_if(delivery, status, guard=Q(lease_until=lease), **values)
    except InvalidTransition as lost:
        # Our lease ran out while sending and the delivery was taken over (an
        # operator's retry, the abandoned-delivery sweep): theirs is the record.
        logger.warning(
            "delivery %s: attempt ended %s after its lease ran out; it is %s now, left as it is",
            delivery_id,
            status,
            lost.current,
        )
        return "skipped"
    return status


def due_delivery_ids(*, now=None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        NotificationDelivery.objects.filter(
            status__in=SENDABLE_DELIVERY_STATUSES, attempts__lt=F("max_attempts")
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def fail_abandoned_deliveries(*, now=None) -> int:
    """Deliveries whose worker died during their last allowed attempt: every
    attempt is used and the lease ran out, so no worker will take them again.
    They become ``failed``; returns how many."""
    now = now or timezone.now()
    reason = sanitize_message(
        "The worker sending the last attempt stopped before recording its outcome "
        "(lease expired); no attempts left."
    )
    abandoned = Q(attempts__gte=F("max_attempts"), lease_until__lt=now)
    failed = 0
    for delivery in NotificationDelivery.objects.filter(
        abandoned, status__in=SENDABLE_DELIVERY_STATUSES
    ).only("pk", "status"):
        try:
            transition_if(
                delivery,
                DeliveryStatus.FAILED,
                guard=abandoned,
                failed_at=now,
                next_attempt_at=None,
                lease_until=None,
                error_message=reason,
            )
        except InvalidTransition:
            continue  # settled or retried meanwhile
        failed += 1
    return failed


def send_deliveries(ids) -> dict[str, int]:
    counts = {
        "attempted": 0,
        "delivered": 0,
        "sent": 0,
        "retrying": 0,
        "failed": 0,
        "bounced": 0,
        "skipped": 0,
    }
    for delivery_id in ids:
        status = send_delivery(delivery_id)
        if status != "skipped":
            counts["attempted"] += 1
        counts[status] = counts.get(status, 0) + 1
    return counts


def delivery_retry(*, delivery_id: int, actor=None) -> NotificationDelivery:
    """An operator's retry: a failed (or waiting) delivery gets one more attempt
    now. Delivered or sent ones cannot be retried (409)."""
    require(actor, RETRY_DELIVERY, doing="retry notification deliveries")
    now = timezone.now()
    delivery = NotificationDelivery.objects.filter(pk=delivery_id).only("pk", "status").first()
    if delivery is None:
        raise NotFound(f"Delivery {delivery_id} does not exist.", code="automation.no_delivery")
    try:
        # A worker holding a live lease may be sending it right now: retrying
        # would send it twice. Only a free or expired lease can be taken over.
        transition_if(
            delivery,
            DeliveryStatus.RETRYING,
            guard=Q(lease_until__isnull=True) | Q(lease_until__lt=now),
            next_attempt_at=now,
            lease_until=None,
            failed_at=None,
            max_attempts=Greatest(F("max_attempts"), F("attempts") + 1),
        )
    except InvalidTransition:
        _refuse_retry(delivery_id)
    send_delivery(delivery_id)
    return NotificationDelivery.objects.get(pk=delivery_id)


def _refuse_retry(delivery_id: int) -> NoReturn:
    row = (
        NotificationDelivery.objects.filter(pk=delivery_id)
        .values_list("status", "lease_until")
        .first()
    )
    if row is None:
        raise NotFound(f"Delivery {delivery_id} does not exist.", code="automation.no_delivery")
    current, lease_until = row
    if current in RETRYABLE_BY_HAND_STATUSES and lease_until is not None:
        raise Conflict(
            f"Delivery {delivery_id} is in flight (a worker holds it until "
            f"{lease_until.isoformat()}); retry after that.",
            code="automation.delivery_in_flight",
            extra={"current_state": current},
        )
    raise InvalidTransition(
        subject=f"Delivery {delivery_id}",
        current=current,
        target=DeliveryStatus.RETRYING,
        code="automation.delivery_not_retryable",
    )
