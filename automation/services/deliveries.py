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

from django.db.models import Case, F, Q, Value, When
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
        .update(
            lease_until=lease,
            attempts=F("attempts") + 1,
            # An expired lease still set: the last worker died mid-send.
            abandoned_attempts=F("abandoned_attempts")
            + Case(When(lease_until__isnull=False, then=Value(1)), default=Value(0)),
            updated_at=now,
        )
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


def deliveries_release_abandoned(*, now=None) -> dict[str, int]:
    """Deliveries whose worker died mid-send: the lease ran out and no outcome
    was recorded (an outcome clears the lease). Each goes back to ``retrying``,
    due now, with its attempt given back when it was the last one, so another
    worker sends it again with the same idempotency key (the receiver drops
    the repeat, should the dead worker's attempt have arrived). One whose
    worker died ``AUTOMATION_DELIVERY_MAX_ABANDONED`` times is ``failed``
    instead. Returns ``{"released": …, "abandoned_failed": …}``."""
    now = now or timezone.now()
    expired = Q(lease_until__lt=now)
    counts = {"released": 0, "abandoned_failed": 0}
    for delivery in NotificationDelivery.objects.filter(
        expired, status__in=SENDABLE_DELIVERY_STATUSES
    ).only("pk", "status", "attempts", "abandoned_attempts"):
        if delivery.abandoned_attempts + 1 >= conf.delivery_max_abandoned():
            target, values, key = _abandoned_failed(delivery, now)
        else:
            target, key = DeliveryStatus.RETRYING, "released"
            values = {
                "next_attempt_at": now,
                "max_attempts": Greatest(F("max_attempts"), F("attempts") + 1),
                "error_message": sanitize_message(
                    f"Attempt {delivery.attempts}: the worker sending it stopped before "
                    "recording its outcome (lease expired); sent again with the same "
                    "idempotency key."
                ),
            }
        try:
            # Guarded by the expired lease: a worker that claimed it meanwhile keeps it.
            transition_if(
                delivery,
                target,
                guard=expired,
                lease_until=None,
                abandoned_attempts=F("abandoned_attempts") + 1,
                **values,
            )
        except InvalidTransition:
            continue  # settled, retried or taken meanwhile
        counts[key] += 1
    return counts


def _abandoned_failed(delivery: NotificationDelivery, now) -> tuple[str, dict, str]:
    reason = sanitize_message(
        f"The worker sending it stopped before recording the outcome "
        f"{delivery.abandoned_attempts + 1} times (lease expired); not sent again."
    )
    values = {"failed_at": now, "next_attempt_at": None, "error_message": reason}
    return DeliveryStatus.FAILED, values, "abandoned_failed"


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
