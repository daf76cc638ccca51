"""Alerts, their recipients, acknowledgements and status history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from automation.choices import (
    ALERT_STATES,
    AcknowledgementKind,
    AlertStatus,
    RecipientType,
    Severity,
)
from automation.models.rules import AutomationRule
from automation.models.runs import AutomationExecution

USER = settings.AUTH_USER_MODEL


class Alert(models.Model):
    alert_type = models.CharField(max_length=100)
    severity = models.CharField(max_length=20, choices=Severity.choices, default=Severity.MEDIUM)
    title = models.CharField(max_length=300)
    message = models.TextField()
    context = models.JSONField(default=dict, blank=True)
    source_entity_name = models.CharField(max_length=200, blank=True)
    source_entity_id = models.CharField(max_length=100, blank=True)
    source_rule = models.ForeignKey(
        AutomationRule, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    source_execution = models.ForeignKey(
        AutomationExecution,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="alerts",
    )
    status = models.CharField(
        max_length=20, choices=AlertStatus.choices, default=AlertStatus.ACTIVE
    )
    expires_date = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(
        auto_now_add=True, db_column="created_date", verbose_name="created date"
    )
    updated_at = models.DateTimeField(
        auto_now=True, db_column="updated_date", verbose_name="updated date"
    )

    state_machine = ALERT_STATES

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status"], name="alert_status"),
            # Lists read newest first: this index is that order (issue 11); it
            # replaces alert_created, on created_at alone.
            models.Index(fields=["-created_at", "-id"], name="alert_newest"),
            models.Index(
                fields=["alert_type", "source_entity_name", "source_entity_id"],
                name="alert_source",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=AlertStatus.values), name="alert_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(severity__in=Severity.values), name="alert_severity_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title}"


class AlertStatusChange(models.Model):
    """Audit: every move of an alert as a whole, in the same transaction as
    the move: who made it (a recipient, an operator; ``system`` for a rule's
    action or the expiry sweep) and why."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, choices=AlertStatus.choices)
    actor = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["alert_id", "created_at", "id"]

    def __str__(self) -> str:
        return f"alert {self.alert_id}: {self.from_status or '∅'} → {self.to_status}"


class AlertRecipient(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="recipients")
    recipient_type = models.CharField(max_length=10, choices=RecipientType.choices)
    user = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(
        auto_now_add=True, db_column="created_date", verbose_name="created date"
    )

    class Meta:
        indexes = [
            models.Index(fields=["recipient_type", "user", "group"], name="alert_recipient"),
            # "My alerts": the alerts naming a user, or a group of theirs (issue 11).
            models.Index(fields=["user", "alert"], name="alert_recipient_user"),
            models.Index(fields=["group", "alert"], name="alert_recipient_group"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(recipient_type=RecipientType.USER, user__isnull=False, group=None))
                | (Q(recipient_type=RecipientType.ROLE, group__isnull=False, user=None)),
                name="alert_recipient_one_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recipient_type}:{self.user_id or self.group_id}"


class AlertAcknowledgement(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="acknowledgements")
    acknowledged_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(
        max_length=20, choices=AcknowledgementKind.choices, default=AcknowledgementKind.ACKNOWLEDGED
    )
    acknowledged_date = models.DateTimeField(auto_now_add=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-acknowledged_date"]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "acknowledged_by"], name="uniq_alert_ack_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.acknowledged_by_id}"
