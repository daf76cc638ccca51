"""Sending notification deliveries, and an operator's retry.

A worker takes a delivery with a conditional UPDATE (sendable status, due,
no live lease) that also counts the attempt, sends outside any transaction
(automation.senders), then records the outcome through the transition
primitive, guarded by its lease. A retryable failure is tried again with
exponential backoff until ``max_attempts``, then the delivery is ``failed``;
a permanent refusal makes it ``bounced``; any other failure fails it at
once. Provider responses and errors are stored sanitised.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, NoReturn

from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from automation import conf
from automation.choices import (
    RETRYABLE_BY_HAND_STATUSES,
    SENDABLE_DELIVERY_STATUSES,
    DeliveryStatus,
)
from automation.models import NotificationDelivery
from automation.permissions import RETRY_DELIVERY, require
from automation.senders import SENDERS, SendResult
from config.errors import Conflict, InvalidTransition, NotFound
from config.transitions import transition_if
from operations.sanitize import sanitize_message

logger = logging.getLogger(__name__)


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
        .update(lease_until=lease, attempts=F("attempts") + 1, updated_at=now)
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


def delivery_send(delivery_id: int) -> str:
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


def deliveries_fail_abandoned(*, now=None) -> int:
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


def deliveries_send(ids) -> dict[str, int]:
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
        status = delivery_send(delivery_id)
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
    delivery_send(delivery_id)
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
