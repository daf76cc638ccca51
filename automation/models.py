"""Automation's tables, after seed 002 (workflow.*).

Differences from the seed, and why:
- ids are Django's BigAutoField like the rest of Bureau; ``source_entity_id``
  and ``recipient`` are text so any primary key fits.
- ``Entity`` also stores the Django model label it resolves to.
- ``RuleAction.action_type`` is on the action (a template is optional).
- ``AutomationEvent`` is the outbox; ``IdempotencyRecord`` generalises the
  seed's allocation_results.
- ``AlertAcknowledgement.kind`` says whether the recipient acknowledged or
  dismissed: acknowledgement is per recipient.

This module is a leaf: it imports no validators, registries or services.
What a rule or a template must satisfy beyond its fields' own checks
(``automation.validation``) is checked by the services and the admin forms.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from automation.choices import (
    ALERT_STATES,
    DELIVERY_STATES,
    EVENT_STATES,
    EXECUTION_STATES,
    AcknowledgementKind,
    AlertStatus,
    DeliveryChannel,
    DeliveryStatus,
    EntityKind,
    EventStatus,
    ExecutionStatus,
    RecipientType,
    Severity,
    Trigger,
)

USER = settings.AUTH_USER_MODEL


def _user_fk(related_name: str, *, null: bool = False):
    return models.ForeignKey(
        USER,
        on_delete=models.PROTECT,
        null=null,
        blank=null,
        related_name=related_name,
    )


class TriggerType(models.Model):
    name = models.CharField(max_length=50, unique=True, choices=Trigger.choices)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    deactivated_by = _user_fk("+", null=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EntityType(models.Model):
    name = models.CharField(max_length=50, unique=True, choices=EntityKind.choices)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    deactivated_by = _user_fk("+", null=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Entity(models.Model):
    """A Django model automation may watch. ``name`` is its table name without
    any schema prefix (the seed's note); ``model_label`` is ``app.Model``."""

    name = models.CharField(max_length=200, unique=True)
    model_label = models.CharField(max_length=200, unique=True)
    entity_type = models.ForeignKey(EntityType, on_delete=models.PROTECT, related_name="entities")
    schema_name = models.CharField(max_length=100, blank=True, default="public")
    is_active = models.BooleanField(default=True)
    created_date = models.DateTimeField(auto_now_add=True)
    deactivated_by = _user_fk("+", null=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "entities"

    def __str__(self) -> str:
        return f"{self.name} ({self.model_label})"


class AutomationRule(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    entity = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="rules")
    entity_type = models.ForeignKey(EntityType, on_delete=models.PROTECT, related_name="rules")
    trigger_type = models.ForeignKey(TriggerType, on_delete=models.PROTECT, related_name="rules")
    trigger_conditions = models.JSONField(default=dict, blank=True)
    # Scheduled rules only: when they run, and the next due slot.
    cron_expression = models.CharField(max_length=100, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every change to the rule or its actions; executions record it.
    version = models.PositiveIntegerField(default=1)
    is_active = models.BooleanField(default=True)
    created_date = models.DateTimeField(auto_now_add=True)
    updated_date = models.DateTimeField(auto_now=True)
    created_by = _user_fk("automation_rules_created")
    updated_by = _user_fk("automation_rules_updated")
    deactivated_by = _user_fk("automation_rules_deactivated", null=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(
                fields=["entity", "trigger_type", "is_active"], name="rule_entity_trigger"
            ),
            models.Index(fields=["is_active", "next_run_at"], name="rule_active_next_run"),
        ]
        permissions = [("dry_run_automationrule", "Can dry-run automation rules")]

    def __str__(self) -> str:
        return self.name


class ActionTemplate(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    action_type = models.CharField(max_length=50)
    default_config = models.JSONField(default=dict)
    created_date = models.DateTimeField(auto_now_add=True)
    created_by = _user_fk("automation_templates_created")
    is_active = models.BooleanField(default=True)
    deactivated_by = _user_fk("+", null=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.action_type})"


class RuleAction(models.Model):
    rule = models.ForeignKey(AutomationRule, on_delete=models.CASCADE, related_name="actions")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    action_type = models.CharField(max_length=50)
    action_config = models.JSONField(default=dict, blank=True)
    execution_order = models.PositiveIntegerField()
    is_active = models.BooleanField(default=True)
    template = models.ForeignKey(
        ActionTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="actions"
    )
    deactivated_by = _user_fk("+", null=True)

    class Meta:
        ordering = ["rule", "execution_order", "id"]
        indexes = [models.Index(fields=["rule", "execution_order"], name="action_rule_order")]
        constraints = [
            models.CheckConstraint(
                condition=Q(execution_order__gte=1), name="rule_action_order_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.execution_order}. {self.name} ({self.action_type})"


class RuleDependency(models.Model):
    """``child_rule`` runs after ``parent_rule`` when both match one event,
    and is skipped when the parent failed."""

    parent_rule = models.ForeignKey(
        AutomationRule, on_delete=models.CASCADE, related_name="child_links"
    )
    child_rule = models.ForeignKey(
        AutomationRule, on_delete=models.CASCADE, related_name="parent_links"
    )

    class Meta:
        verbose_name_plural = "rule dependencies"
        constraints = [
            models.UniqueConstraint(
                fields=["parent_rule", "child_rule"], name="uniq_rule_dependency"
            ),
            models.CheckConstraint(
                condition=~Q(parent_rule=models.F("child_rule")),
                name="rule_dependency_not_self",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.parent_rule_id} → {self.child_rule_id}"


class AutomationEvent(models.Model):
    """The outbox: written in the same transaction as the change it records,
    processed after commit. ``depth`` counts how many rule executions led to
    it (0 for a change made by a person or a program)."""

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="events")
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    object_pk = models.CharField(max_length=100)
    new_values = models.JSONField(null=True, blank=True)
    old_values = models.JSONField(null=True, blank=True)
    changed_fields = models.JSONField(default=list, blank=True)
    depth = models.PositiveIntegerField(default=0)
    caused_by = models.ForeignKey(
        "AutomationExecution",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="caused_events",
    )
    status = models.CharField(
        max_length=20, choices=EventStatus.choices, default=EventStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    state_machine = EVENT_STATES

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "id"], name="event_status_id")]

    def __str__(self) -> str:
        return f"event {self.pk}: {self.trigger} {self.entity_id}#{self.object_pk}"


class AutomationExecution(models.Model):
    rule = models.ForeignKey(AutomationRule, on_delete=models.PROTECT, related_name="executions")
    rule_version = models.PositiveIntegerField()
    event = models.ForeignKey(
        AutomationEvent,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="executions",
    )
    # Scheduled rules: the cron slot this execution belongs to.
    schedule_slot = models.DateTimeField(null=True, blank=True)
    entity_type = models.CharField(max_length=200)
    object_pk = models.CharField(max_length=100, blank=True)
    trigger_data = models.JSONField(null=True, blank=True)
    actions_executed = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=ExecutionStatus.choices)
    error_message = models.TextField(blank=True)
    execution_time_ms = models.PositiveIntegerField(null=True, blank=True)
    depth = models.PositiveIntegerField(default=0)
    executed_at = models.DateTimeField(auto_now_add=True)

    state_machine = EXECUTION_STATES

    class Meta:
        ordering = ["-executed_at", "-id"]
        indexes = [
            models.Index(fields=["rule", "-executed_at"], name="execution_rule_date"),
            models.Index(fields=["status"], name="execution_status"),
        ]
        constraints = [
            # Each (event, rule) pair executes at most once, whoever processes it.
            models.UniqueConstraint(
                fields=["event", "rule"],
                condition=Q(event__isnull=False),
                name="uniq_execution_event_rule",
            ),
            models.UniqueConstraint(
                fields=["rule", "schedule_slot", "object_pk"],
                condition=Q(schedule_slot__isnull=False),
                name="uniq_execution_schedule_slot",
            ),
            models.CheckConstraint(
                condition=Q(status__in=ExecutionStatus.values), name="execution_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"execution {self.pk} of rule {self.rule_id} ({self.status})"


class NotificationDelivery(models.Model):
    notification_id = models.UUIDField(default=uuid.uuid4, editable=False)
    execution = models.ForeignKey(
        AutomationExecution,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deliveries",
    )
    rule = models.ForeignKey(
        AutomationRule, null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries"
    )
    action = models.ForeignKey(
        RuleAction, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    # A user id (email, sms, push, in_app) or the webhook's URL without credentials.
    recipient = models.CharField(max_length=500)
    recipient_user = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=50, choices=DeliveryChannel.choices)
    status = models.CharField(
        max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    payload = models.JSONField(default=dict)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    provider_response = models.JSONField(null=True, blank=True)
    created_date = models.DateTimeField(auto_now_add=True)
    updated_date = models.DateTimeField(auto_now=True)

    state_machine = DELIVERY_STATES

    class Meta:
        ordering = ["-created_date", "-id"]
        verbose_name_plural = "notification deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "action", "channel", "recipient"],
                name="uniq_delivery_per_recipient_channel",
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} {self.channel} → {self.recipient} ({self.status})"


class NotificationProfile(models.Model):
    """Where a person's SMS and push notifications go. Optional: a recipient
    without a number (or token) gets a failed delivery saying so."""

    user = models.OneToOneField(USER, on_delete=models.CASCADE, related_name="notification_profile")
    phone_number = models.CharField(
        max_length=16,
        blank=True,
        validators=[
            RegexValidator(
                r"^\+[1-9][0-9]{6,14}$",
                "Give the number in international form: + then 7 to 15 digits, e.g. +821012345678.",
            )
        ],
        help_text="For SMS, in international form (E.164), e.g. +821012345678.",
    )
    push_token = models.CharField(
        max_length=4096, blank=True, help_text="The device's push registration token."
    )
    updated_date = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user_id"]

    def __str__(self) -> str:
        return f"notification profile of {self.user}"


class IdempotencyRecord(models.Model):
    """The seed's allocation_results, generalised: one row per side effect,
    keyed ``execution:rule:action``; a repeat returns ``result``."""

    idempotency_key = models.CharField(max_length=255, unique=True)
    result = models.JSONField(default=dict)
    execution = models.ForeignKey(
        AutomationExecution,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="idempotency_records",
    )
    created_date = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_date"]

    def __str__(self) -> str:
        return self.idempotency_key


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
    created_date = models.DateTimeField(auto_now_add=True)
    updated_date = models.DateTimeField(auto_now=True)

    state_machine = ALERT_STATES

    class Meta:
        ordering = ["-created_date", "-id"]
        indexes = [
            models.Index(fields=["status"], name="alert_status"),
            models.Index(fields=["created_date"], name="alert_created"),
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
    created_date = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["recipient_type", "user", "group"], name="alert_recipient")]
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
