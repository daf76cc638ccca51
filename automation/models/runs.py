"""What rules do: the outbox of events, executions, and the idempotency table."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from automation.choices import (
    EVENT_STATES,
    EXECUTION_STATES,
    EventStatus,
    ExecutionStatus,
    Trigger,
)
from automation.models.rules import AutomationRule, Entity


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
        constraints = [
            # An inbound event's object_pk is the sender's idempotency key: one
            # event per key and source, however many posts carry it at once.
            models.UniqueConstraint(
                fields=["entity", "object_pk"],
                condition=Q(trigger=Trigger.INBOUND),
                name="uniq_inbound_event_key",
            ),
        ]

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
            # Lists read newest first: this index is that order (issue 11).
            models.Index(fields=["-executed_at", "-id"], name="execution_newest"),
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
    created_at = models.DateTimeField(
        auto_now_add=True, db_column="created_date", verbose_name="created date"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.idempotency_key
