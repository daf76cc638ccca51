"""Rules: the entities they watch, their triggers, actions and dependencies."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from automation.choices import EntityKind, Trigger

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
    created_at = models.DateTimeField(
        auto_now_add=True, db_column="created_date", verbose_name="created date"
    )
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
    created_at = models.DateTimeField(
        auto_now_add=True, db_column="created_date", verbose_name="created date"
    )
    updated_at = models.DateTimeField(
        auto_now=True, db_column="updated_date", verbose_name="updated date"
    )
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
            models.Index(fields=["name", "id"], name="rule_name_id"),
        ]
        permissions = [("dry_run_automationrule", "Can dry-run automation rules")]

    def __str__(self) -> str:
        return self.name


class ActionTemplate(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    action_type = models.CharField(max_length=50)
    default_config = models.JSONField(default=dict)
    created_at = models.DateTimeField(
        auto_now_add=True, db_column="created_date", verbose_name="created date"
    )
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


class RuleVersion(models.Model):
    """A rule's whole definition — its fields, its actions in order, its
    parents — as it was saved at ``version``: one row per save, written by
    ``rule_save`` in the save's transaction. Webhook URLs are stored masked
    (as readers are shown them): a version is for reading, not restoring."""

    rule = models.ForeignKey(AutomationRule, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    definition = models.JSONField()
    saved_by = _user_fk("+", null=True)
    saved_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rule", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "version"], name="uniq_rule_version"),
        ]

    def __str__(self) -> str:
        return f"rule {self.rule_id} v{self.version}"
