"""Alerts: a recipient acknowledges or dismisses one (for themself); an
operator acknowledges or dismisses it for everyone; the sweep expires them.
The alert as a whole moves through config/transitions.py (ALERT_STATES),
each move recorded in its status history."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from automation.choices import ALERT_STATES, CLOSED_ALERT_STATUSES, AcknowledgementKind, AlertStatus
from automation.models import Alert, AlertAcknowledgement
from automation.permissions import SET_ALERT_STATUS, require
from automation.selectors import alerts_for_recipient
from config.errors import InvalidTransition, NotFound
from config.transitions import TransitionBatch, lock, lock_many, transition


def _recipient_alert(*, user, alert_id: int, for_update: bool = True) -> Alert:
    visible = alerts_for_recipient(user).filter(
        Q(expires_date__isnull=True) | Q(expires_date__gt=timezone.now())
    )
    if not visible.filter(pk=alert_id).exists():
        raise NotFound(f"Alert {alert_id} does not exist.", code="automation.no_alert")
    if for_update:
        return lock(Alert, pk=alert_id)
    return Alert.objects.get(pk=alert_id)


def _my_acknowledgement(alert: Alert, user) -> AlertAcknowledgement | None:
    return AlertAcknowledgement.objects.filter(alert=alert, acknowledged_by=user).first()


@transaction.atomic
def alert_acknowledge(*, alert_id: int, user, notes: str = "") -> AlertAcknowledgement:
    """A recipient acknowledges: idempotent; refused (409) once the alert is
    closed (resolved, dismissed, expired), or after the recipient dismissed it.
    The first acknowledgement moves the alert as a whole to acknowledged."""
    alert = _recipient_alert(user=user, alert_id=alert_id)
    mine = _my_acknowledgement(alert, user)
    if mine is not None and mine.kind == AcknowledgementKind.ACKNOWLEDGED:
        return mine
    if mine is not None or alert.status in CLOSED_ALERT_STATUSES:
        raise InvalidTransition(
            subject=f"Alert {alert.pk}",
            current=mine.kind if mine else alert.status,
            target=AlertStatus.ACKNOWLEDGED,
            code="automation.alert_not_acknowledgeable",
        )
    ack = AlertAcknowledgement.objects.create(
        alert=alert, acknowledged_by=user, kind=AcknowledgementKind.ACKNOWLEDGED, notes=notes
    )
    if alert.status == AlertStatus.ACTIVE:
        transition(
            alert, AlertStatus.ACKNOWLEDGED, actor=user, reason="acknowledged by a recipient"
        )
    return ack


@transaction.atomic
def alert_dismiss(*, alert_id: int, user, notes: str = "") -> AlertAcknowledgement:
    """A recipient dismisses the alert for themself (after acknowledging it or
    not); the alert as a whole does not move."""
    alert = _recipient_alert(user=user, alert_id=alert_id)
    if alert.status in (AlertStatus.RESOLVED, AlertStatus.EXPIRED):
        raise InvalidTransition(
            subject=f"Alert {alert.pk}",
            current=alert.status,
            target=AlertStatus.DISMISSED,
            code="automation.alert_not_dismissable",
        )
    mine = _my_acknowledgement(alert, user)
    if mine is None:
        return AlertAcknowledgement.objects.create(
            alert=alert, acknowledged_by=user, kind=AcknowledgementKind.DISMISSED, notes=notes
        )
    if mine.kind != AcknowledgementKind.DISMISSED:
        mine.kind = AcknowledgementKind.DISMISSED
        if notes:
            mine.notes = notes
        mine.save(update_fields=["kind", "notes"])
    return mine


@transaction.atomic
def alerts_acknowledge_selected(*, alert_ids: list[int], user, notes: str = "") -> dict[str, list]:
    """All or nothing: an id that is not one of the user's alerts is a 404
    and nothing is acknowledged."""
    results: dict[str, list] = {"acknowledged": [], "refused": []}
    for alert_id in sorted(set(alert_ids)):
        _recipient_alert(user=user, alert_id=alert_id, for_update=False)
    for alert_id in sorted(set(alert_ids)):
        try:
            alert_acknowledge(alert_id=alert_id, user=user, notes=notes)
        except InvalidTransition as refused:
            results["refused"].append({"id": alert_id, "current_state": refused.current})
        else:
            results["acknowledged"].append(alert_id)
    return results


@transaction.atomic
def alert_set_status_by_operator(*, alert: Alert, status: str, actor) -> Alert:
    """The console's bulk acknowledge / dismiss: the alert as a whole, recorded
    as the operator's acknowledgement."""
    if status not in (AlertStatus.ACKNOWLEDGED, AlertStatus.DISMISSED):
        raise ValueError(f"operators acknowledge or dismiss alerts, not {status!r}")
    require(actor, SET_ALERT_STATUS, doing="acknowledge or dismiss alerts for everyone")
    alert = lock(Alert, pk=alert.pk)
    if alert.status == status:
        return alert
    transition(alert, status, actor=actor, reason="from the operator console")
    AlertAcknowledgement.objects.update_or_create(
        alert=alert,
        acknowledged_by=actor,
        defaults={"kind": status, "notes": "from the operator console"},
    )
    return alert


def alerts_expire(*, now=None) -> int:
    """Live alerts whose expires_date has passed become ``expired`` (the
    scheduled sweep); returns how many. The due alerts are locked (one a
    recipient is acknowledging right now is left for the next sweep) and
    moved from their state at that moment, each move recorded."""
    now = now or timezone.now()
    with transaction.atomic():
        due = lock_many(
            Alert.objects.filter(
                status__in=ALERT_STATES.sources(AlertStatus.EXPIRED), expires_date__lte=now
            ),
            skip_locked=True,
        )
        with TransitionBatch() as batch:
            for alert in due:
                batch.move(alert, AlertStatus.EXPIRED, reason="its expiry date passed")
    return len(due)
