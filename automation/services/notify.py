"""Alerts and notifications another app raises itself, not through a rule's
action (the approvals deadline sweep: reminders and escalations). The rows
are the ones ``create_alert`` and ``send_notification`` write, sent by the
same workers, so they show where those do (*Alerts*, ``/api/v1/alerts/mine/``,
the deliveries list, ``?channel=in_app``). Call inside the caller's
transaction: the sending is queued when it commits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from automation import conf
from automation.actions import recipients as recipient_refs
from automation.actions.notifications import send_on_commit
from automation.choices import PEOPLE_CHANNELS, RecipientType, Severity
from automation.models import Alert, AlertRecipient, NotificationDelivery


def notification_recipients(*, recipients: Mapping[str, Any] | None, users: Iterable = ()) -> list:
    """Every active user ``users`` and ``recipients`` (``{"users": […],
    "roles": […]}``, as in a rule's action) reach, each once, in id order.
    ``ValidationError`` naming a user or role that does not exist."""
    named, groups = recipient_refs.resolve(dict(recipients or {}))
    return recipient_refs.users_of([*users, *named], groups)


def notifications_create(
    *,
    users: Iterable,
    channels: Iterable[str],
    subject: str,
    message: str,
    data: Mapping[str, str] | None = None,
) -> list[int]:
    """One delivery per user and channel (people's channels: in_app, email,
    sms, push), sent after commit with the usual retries. Returns their ids."""
    channels = list(dict.fromkeys(channels))
    unknown = [c for c in channels if c not in PEOPLE_CHANNELS]
    if unknown:
        raise ValueError(f"not a channel to people: {', '.join(unknown)}")
    now = timezone.now()
    rows = []
    for user in users:
        for channel in channels:
            payload: dict[str, Any] = {"subject": subject[:300], "message": message}
            if data:
                payload["data"] = dict(data)
            rows.append(
                NotificationDelivery(
                    recipient=str(user.pk),
                    recipient_user=user,
                    channel=channel,
                    payload=payload,
                    max_attempts=conf.delivery_max_attempts(),
                    next_attempt_at=now,
                )
            )
    NotificationDelivery.objects.bulk_create(rows)
    ids = [row.pk for row in rows]
    if ids:
        send_on_commit(ids)
    return ids


def alert_raise(
    *,
    alert_type: str,
    title: str,
    message: str,
    recipients: Mapping[str, Any],
    severity: str = Severity.HIGH,
    context: Mapping[str, Any] | None = None,
    source_entity_name: str = "",
    source_entity_id: str = "",
) -> Alert:
    """An active alert to ``recipients`` (``{"users": […], "roles": […]}``),
    acknowledged per recipient like a rule's. ``ValidationError`` when a
    recipient does not exist or none is named."""
    users, groups = recipient_refs.resolve(dict(recipients or {}), key="recipients")
    if not users and not groups:
        raise ValidationError("An alert needs at least one user or role to go to.")
    alert = Alert.objects.create(
        alert_type=alert_type[:100],
        severity=severity,
        title=title[:300],
        message=message,
        context=dict(context or {}),
        source_entity_name=source_entity_name[:200],
        source_entity_id=str(source_entity_id)[:100],
    )
    AlertRecipient.objects.bulk_create(
        [AlertRecipient(alert=alert, recipient_type=RecipientType.USER, user=u) for u in users]
        + [AlertRecipient(alert=alert, recipient_type=RecipientType.ROLE, group=g) for g in groups]
    )
    return alert
