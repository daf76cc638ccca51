"""Reads that are more than one ``.filter()``. Never imports services."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from automation.choices import (
    CLOSED_ALERT_STATUSES,
    SENDABLE_DELIVERY_STATUSES,
    AlertStatus,
    Trigger,
)
from automation.models import (
    Alert,
    AlertAcknowledgement,
    AlertRecipient,
    AutomationExecution,
    AutomationRule,
    NotificationDelivery,
    RuleDependency,
)


def alerts_for_recipient(user) -> QuerySet[Alert]:
    """Alerts ``user`` is a recipient of: named, or a member of a named group.

    One semi-join (``EXISTS``), not a join with ``DISTINCT``: each alert is
    listed once without sorting every wide alert row to drop duplicates. One
    EXISTS with the OR inside, not two ORed: PostgreSQL turns only a plain
    EXISTS into a semi-join, so a page of the newest walks the
    ``(created_at, id)`` index probing recipients per alert, and a count is
    one hash semi-join over the recipients ``(user, alert)`` index (two ORed
    EXISTS are a subplan per alert, which at 100k alerts also trips JIT)."""
    named = AlertRecipient.objects.filter(alert=OuterRef("pk")).filter(
        Q(user=user) | Q(group__in=user.groups.values("pk"))
    )
    return Alert.objects.filter(Exists(named))


def alerts_mine(user, *, status: str | None = None, severity: str | None = None) -> QuerySet[Alert]:
    """The user's alerts, expired ones hidden, each with ``recipient_status``:
    the alert's own state when it is closed (resolved, dismissed, expired),
    else the user's acknowledgement (acknowledged / dismissed), else active.
    ``status`` filters on it."""
    # One at most (unique per alert and user): no ordering to sort by.
    mine = AlertAcknowledgement.objects.filter(
        alert=OuterRef("pk"), acknowledged_by=user
    ).order_by()
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
        .order_by("-created_at", "-id")
    )
    if status:
        alerts = alerts.filter(recipient_status=status)
    if severity:
        alerts = alerts.filter(severity=severity)
    return alerts


def executions_list() -> QuerySet[AutomationExecution]:
    return AutomationExecution.objects.select_related("rule").order_by("-executed_at", "-id")


def deliveries_list() -> QuerySet[NotificationDelivery]:
    return NotificationDelivery.objects.order_by("-created_at", "-id")


def rule_has_history(rule: AutomationRule) -> bool:
    """Whether executions, alerts or deliveries point at the rule (then it is
    deactivated, never deleted)."""
    return rule.executions.exists() or rule.alerts.exists() or rule.deliveries.exists()


def rule_dependency_cycle(*, rule: AutomationRule, parent_ids: Iterable[int]) -> list[int] | None:
    """If ``rule`` depending on ``parent_ids`` closes a loop, the loop as rule
    ids (first == last, starting at a parent), else None."""
    children: dict[int, set[int]] = {}
    for parent_id, child_id in RuleDependency.objects.exclude(child_rule_id=rule.pk).values_list(
        "parent_rule_id", "child_rule_id"
    ):
        children.setdefault(parent_id, set()).add(child_id)
    for parent_id in sorted(set(parent_ids)):
        if parent_id == rule.pk:
            return [rule.pk, rule.pk]
        # A loop exists when the parent is reachable from the rule itself.
        path = _path(children, start=rule.pk, goal=parent_id)
        if path is not None:
            return [parent_id, *path]
    return None


def _path(children: dict[int, set[int]], *, start: int, goal: int) -> list[int] | None:
    stack = [(start, [start])]
    seen = {start}
    while stack:
        node, path = stack.pop()
        if node == goal:
            return path
        for child in sorted(children.get(node, ()), reverse=True):
            if child not in seen:
                seen.add(child)
                stack.append((child, [*path, child]))
    return None


def deliveries_due_ids(*, now=None, limit: int = 500) -> list[int]:
    """Deliveries a worker may take now: sendable, due, attempts left, no live lease."""
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


def scheduled_rules_due(*, now) -> list[int]:
    """Active scheduled rules whose next slot has come, soonest first."""
    return list(
        AutomationRule.objects.filter(
            is_active=True, trigger_type__name=Trigger.SCHEDULED, next_run_at__lte=now
        )
        .order_by("next_run_at", "id")
        .values_list("pk", flat=True)
    )
