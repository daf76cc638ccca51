"""Rules with their actions and dependencies: saved by one service, the one
write path of the API and the console."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from automation.choices import Trigger
from automation.conf import MAX_DB_INT
from automation.engine.scheduled import next_run_after
from automation.entities import invalidate_watch_index
from automation.models import AutomationRule, Entity, RuleAction, RuleDependency
from automation.permissions import CHANGE_RULE, DELETE_RULE, require
from automation.selectors import rule_has_history
from automation.services.dependencies import dependency_graph_lock, rule_parents_set
from automation.services.versions import rule_version_record
from automation.validation import action_config_errors, entity_model, rule_full_clean
from automation.webhooks import unmask_config
from config.transitions import lock


def rule_actions_check(entity: Entity, actions: list[dict[str, Any]]) -> None:
    model = entity_model(entity)
    problems = []
    for number, action in enumerate(actions, start=1):
        label = f"Action {number} ({action.get('name') or action.get('action_type')})"
        order = action.get("execution_order", 0)
        if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= MAX_DB_INT:
            problems.append(f"{label}: execution_order must be from 1 to {MAX_DB_INT}.")
        for message in action_config_errors(
            action_type=action.get("action_type", ""),
            config=action.get("action_config", {}),
            template=action.get("template"),
            model=model,
        ):
            problems.append(f"{label}: {message}")
    if problems:
        raise ValidationError({"actions": problems})


def _keep_stored_webhook_urls(
    actions: list[dict[str, Any]], rule: AutomationRule
) -> list[dict[str, Any]]:
    """Readers are shown webhook URLs masked; a client that sends an action
    back as it read it (a PUT of what it got) keeps the URL stored for it."""
    stored = list(rule.actions.values_list("execution_order", "action_config"))
    kept = []
    for action in actions:
        if "action_config" in action:
            # The action at the same place first: two URLs may differ only in a masked part.
            order = action.get("execution_order")
            candidates = [c for o, c in stored if o == order] + [c for o, c in stored if o != order]
            action = {
                **action,
                "action_config": unmask_config(action["action_config"], stored=candidates),
            }
        kept.append(action)
    return kept


def _replace_actions(rule: AutomationRule, actions: list[dict[str, Any]]) -> None:
    rule_actions_check(rule.entity, actions)
    # Actions are part of the rule: a change replaces them (the version says which ran).
    RuleAction.objects.filter(rule=rule).delete()
    RuleAction.objects.bulk_create(
        [
            RuleAction(
                rule=rule,
                name=a.get("name") or a["action_type"],
                description=a.get("description", ""),
                action_type=a["action_type"],
                action_config=a.get("action_config", {}),
                execution_order=a["execution_order"],
                is_active=a.get("is_active", True),
                template=a.get("template"),
            )
            for a in actions
        ]
    )


def _schedule(rule: AutomationRule) -> None:
    if rule.trigger_type.name == Trigger.SCHEDULED and rule.cron_expression:
        rule.next_run_at = next_run_after(rule.cron_expression, timezone.now())
    else:
        rule.next_run_at = None


def _after_commit_refresh() -> None:
    invalidate_watch_index()
    transaction.on_commit(invalidate_watch_index)


RULE_FIELDS = (
    "name",
    "description",
    "entity",
    "trigger_type",
    "trigger_conditions",
    "cron_expression",
    "is_active",
)


@transaction.atomic
def rule_save(
    *,
    actor,
    rule: AutomationRule | None = None,
    actions: list[dict[str, Any]] | None = None,
    depends_on: Iterable[AutomationRule] | None = None,
    **fields: Any,
) -> AutomationRule:
    """Save a rule with its actions and dependencies: the one write path of
    the API and the console.

    ``rule`` None creates a rule from ``fields`` (its name, entity and
    trigger type at least); otherwise ``fields`` are the ones that change and
    the version goes up by one. ``actions``, when given, replace the rule's
    actions (an edit recreates them: the version says which ran), and
    ``depends_on`` its parent rules; None keeps them. The rest follows from
    the rule: its entity type from its entity, ``next_run_at`` from its
    trigger and cron expression, ``deactivated_by``/``deactivated_at`` from
    ``is_active`` turning false (cleared when it turns true)."""
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise ValueError(f"rule_save got unknown fields {sorted(unknown)}")
    creating = rule is None
    if depends_on is not None:
        depends_on = list(depends_on)
        if not creating:
            # The graph first (in id order, this rule included), then the
            # rule: one lock order for every edit, so two edits cannot deadlock.
            dependency_graph_lock(rule_ids=[rule.pk, *(p.pk for p in depends_on)])
    rule = AutomationRule(created_by=actor) if creating else lock(AutomationRule, pk=rule.pk)
    for key, value in fields.items():
        setattr(rule, key, value)
    if rule.entity_id:
        rule.entity_type = rule.entity.entity_type
    if not creating:
        _follow_is_active(rule, fields.get("is_active"), actor)
    rule.updated_by = actor
    rule_full_clean(rule)
    if actions is not None:
        if not creating:
            actions = _keep_stored_webhook_urls(actions, rule)
        rule_actions_check(rule.entity, actions)
    elif "entity" in fields and not creating:
        rule_actions_check(rule.entity, [_as_input(a) for a in rule.actions.all()])
    _schedule(rule)
    if not creating:
        rule.version = F("version") + 1
    rule.save()
    if not creating:
        rule.refresh_from_db()
    if actions is not None or creating:
        _replace_actions(rule, actions or [])
    if depends_on is not None or creating:
        rule_parents_set(rule=rule, parents=depends_on or [])
    rule_version_record(rule=rule, actor=actor)
    _after_commit_refresh()
    return rule


def _follow_is_active(rule: AutomationRule, is_active: bool | None, actor) -> None:
    """Who deactivated a rule, and when; cleared when it is active again."""
    if is_active is True:
        rule.deactivated_by, rule.deactivated_at = None, None
    elif is_active is False and rule.deactivated_at is None:
        rule.deactivated_by, rule.deactivated_at = actor, timezone.now()


def _as_input(action: RuleAction) -> dict[str, Any]:
    return {
        "name": action.name,
        "action_type": action.action_type,
        "action_config": action.action_config,
        "execution_order": action.execution_order,
        "template": action.template,
    }


@transaction.atomic
def rule_deactivate(*, rule: AutomationRule, actor) -> AutomationRule:
    require(actor, CHANGE_RULE, doing="deactivate automation rules")
    return _deactivate(rule=rule, actor=actor)


def _deactivate(*, rule: AutomationRule, actor) -> AutomationRule:
    rule = lock(AutomationRule, pk=rule.pk)
    if rule.is_active:
        rule.is_active = False
        _follow_is_active(rule, False, actor)
        rule.updated_by = actor
        rule.version = F("version") + 1
        rule.save()
        rule.refresh_from_db()
        rule_version_record(rule=rule, actor=actor)
    _after_commit_refresh()
    return rule


@transaction.atomic
def rule_delete(*, rule: AutomationRule, actor) -> AutomationRule | None:
    """Delete a rule nothing refers to; a rule with history is deactivated
    instead (and returned)."""
    require(actor, DELETE_RULE, doing="delete automation rules")
    rule = lock(AutomationRule, pk=rule.pk)
    if rule_has_history(rule):
        return _deactivate(rule=rule, actor=actor)
    RuleDependency.objects.filter(Q(parent_rule=rule) | Q(child_rule=rule)).delete()
    rule.delete()
    _after_commit_refresh()
    return None
