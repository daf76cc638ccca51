from __future__ import annotations

from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from automation.choices import AlertStatus
from automation.models import Alert, AlertAcknowledgement, AutomationExecution, NotificationDelivery
from automation.services import alerts_for_recipient


def alerts_mine(user, *, status: str | None = None, severity: str | None = None) -> QuerySet[Alert]:
    """The user's alerts, expired ones hidden, each with ``my_status``: resolved
    or dismissed when the alert as a whole is, else the user's own
    acknowledgement (acknowledged / dismissed), else active."""
    mine = AlertAcknowledgement.objects.filter(alert=OuterRef("pk"), acknowledged_by=user)
    alerts = (
        alerts_for_recipient(user)
        .filter(Q(expires_date__isnull=True) | Q(expires_date__gt=timezone.now()))
        .annotate(own_ack=Subquery(mine.values("kind")[:1]))
        .annotate(
            my_status=Case(
                When(status__in=[AlertStatus.RESOLVED, AlertStatus.DISMISSED], then=F("status")),
                When(own_ack__isnull=False, then=F("own_ack")),
                default=Value(AlertStatus.ACTIVE),
            )
        )
        .order_by("-created_date", "-id")
    )
    if status:
        alerts = alerts.filter(my_status=status)
    if severity:
        alerts = alerts.filter(severity=severity)
    return alerts


def executions_list() -> QuerySet[AutomationExecution]:
    return AutomationExecution.objects.select_related("rule").order_by("-executed_at", "-id")


def deliveries_list() -> QuerySet[NotificationDelivery]:
    return NotificationDelivery.objects.order_by("-created_date", "-id")
