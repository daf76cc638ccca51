from __future__ import annotations

from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from automation.choices import CLOSED_ALERT_STATUSES, AlertStatus
from automation.models import Alert, AlertAcknowledgement, AutomationExecution, NotificationDelivery


def alerts_for_recipient(user) -> QuerySet[Alert]:
    """Alerts ``user`` is a recipient of: named, or a member of a named group."""
    return Alert.objects.filter(
        Q(recipients__user=user) | Q(recipients__group__in=user.groups.all())
    ).distinct()


def alerts_mine(user, *, status: str | None = None, severity: str | None = None) -> QuerySet[Alert]:
    """The user's alerts, expired ones hidden, each with ``recipient_status``:
    the alert's own state when it is closed (resolved, dismissed, expired),
    else the user's acknowledgement (acknowledged / dismissed), else active.
    ``status`` filters on it."""
    mine = AlertAcknowledgement.objects.filter(alert=OuterRef("pk"), acknowledged_by=user)
    alerts = (
        alerts_for_recipient(user)
        .filter(Q(expires_date__isnull=True) | Q(expires_date__gt=timezone.now()))
        .annotate(own_ack=Subquery(mine.values("kind")[:1]))
        .annotate(
            recipient_status=Case(
                When(status__in=CLOSED_ALERT_STATUSES, then=F("status")),
                When(own_ack__isnull=False, then=F("own_ack")),
                default=Value(AlertStatus.ACTIVE),
            )
        )
        .order_by("-created_date", "-id")
    )
    if status:
        alerts = alerts.filter(recipient_status=status)
    if severity:
        alerts = alerts.filter(severity=severity)
    return alerts


def executions_list() -> QuerySet[AutomationExecution]:
    return AutomationExecution.objects.select_related("rule").order_by("-executed_at", "-id")


def deliveries_list() -> QuerySet[NotificationDelivery]:
    return NotificationDelivery.objects.order_by("-created_date", "-id")
