"""Every write automation makes on behalf of a person goes through here:
rules and their actions and dependencies, alert acknowledgements."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from automation.choices import (
    ALERT_STATES,
    CLOSED_ALERT_STATUSES,
    AcknowledgementKind,
    AlertStatus,
    Trigger,
)
from automation.conf import MAX_DB_INT
from automation.engine import next_run_after
from automation.entities import invalidate_watch_index
from automation.models import (
    ActionTemplate,
    Alert,
    AlertAcknowledgement,
    AutomationRule,
    Entity,
    RuleAction,
    RuleDependency,
)
from automation.permissions import CHANGE_RULE, DELETE_RULE, SET_ALERT_STATUS, require
from automation.selectors import alerts_for_recipient
from automation.validation import (
    action_config_errors,
    entity_model,
    rule_full_clean,
    template_full_clean,
)
from automation.webhooks import unmask_config
from config.errors import InvalidTransition, NotFound
from config.transitions import TransitionBatch, lock, lock_many, transition

# --- dependencies ------------------------------------------------------------------------


def find_dependency_cycle(*, rule: AutomationRule, parent_ids: Iterable[int]) -> list[int] | None:
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


def describe_cycle(cycle: list[int]) -> str:
    names = dict(AutomationRule.objects.filter(pk__in=cycle).values_list("pk", "name"))
    return " → ".join(f"{names.get(pk, '(this rule)')} (#{pk})" for pk in cycle)


def check_dependencies(*, rule: AutomationRule, parent_ids: Iterable[int]) -> None:
    cycle = find_dependency_cycle(rule=rule, parent_ids=parent_ids)
    if cycle is not None:
        raise ValidationError(
            {"depends_on": [f"Dependency cycle: {describe_cycle(cycle)}."]}, code="cycle"
        )


def _lock_dependency_graph(rule_ids: Iterable[int]) -> None:
    """Lock, in id order, every rule in the dependency graph plus ``rule_ids``.
    Two edits that would close a loop together share at least one of these
    rows, so the second waits for the first and sees its edge."""
    linked = RuleDependency.objects.values_list("child_rule_id", flat=True).union(
        RuleDependency.objects.values_list("parent_rule_id", flat=True)
    )
    lock_many(AutomationRule.objects.only("pk"), set(rule_ids) | set(linked))


def _set_parents(rule: AutomationRule, parents: Iterable[AutomationRule]) -> None:
    parent_ids = sorted({p.pk for p in parents})
    if parent_ids or RuleDependency.objects.filter(child_rule=rule).exists():
        _lock_dependency_graph([rule.pk, *parent_ids])
    check_dependencies(rule=rule, parent_ids=parent_ids)
    RuleDependency.objects.filter(child_rule=rule).exclude(parent_rule_id__in=parent_ids).delete()
    existing = set(
        RuleDependency.objects.filter(child_rule=rule).values_list("parent_rule_id", flat=True)
    )
    RuleDependency.objects.bulk_create(
        [RuleDependency(parent_rule_id=p, child_rule=rule) for p in parent_ids if p not in existing]
    )


def lock_and_check_dependencies(*, rule: AutomationRule, parent_ids: Iterable[int]) -> None:
    """The console's check: lock the dependency graph (in id order, the rule
    included) and look for a loop under that lock. Called inside the
    caller's transaction, which keeps the lock until its save commits, so a
    concurrent edit cannot close a loop in between."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_and_check_dependencies needs the caller's transaction")
    parent_ids = sorted(set(parent_ids))
    _lock_dependency_graph([rule.pk, *parent_ids])
    check_dependencies(rule=rule, parent_ids=parent_ids)


# --- rules -------------------------------------------------------------------------------


def _check_actions(entity: Entity, actions: list[dict[str, Any]]) -> None:
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
    _check_actions(rule.entity, actions)
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
            _lock_dependency_graph([rule.pk, *(p.pk for p in depends_on)])
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
        _check_actions(rule.entity, actions)
    elif "entity" in fields and not creating:
        _check_actions(rule.entity, [_as_input(a) for a in rule.actions.all()])
    _schedule(rule)
    if not creating:
        rule.version = F("version") + 1
    rule.save()
    if not creating:
        rule.refresh_from_db()
    if actions is not None or creating:
        _replace_actions(rule, actions or [])
    if depends_on is not None or creating:
        _set_parents(rule, depends_on or [])
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


def rule_has_history(rule: AutomationRule) -> bool:
    return rule.executions.exists() or rule.alerts.exists() or rule.deliveries.exists()


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


TEMPLATE_FIELDS = ("name", "description", "action_type", "default_config", "is_active")


@transaction.atomic
def template_save(
    *, actor, template: ActionTemplate | None = None, **fields: Any
) -> ActionTemplate:
    """Create an action template (``template`` None) or change one:
    ``fields`` are the ones given. Deactivating it records who did."""
    unknown = set(fields) - set(TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(f"template_save got unknown fields {sorted(unknown)}")
    if template is None:
        template = ActionTemplate(created_by=actor)
    else:
        template = lock(ActionTemplate, pk=template.pk)
    for key, value in fields.items():
        setattr(template, key, value)
    if fields.get("is_active") is True:
        template.deactivated_by = None
    elif fields.get("is_active") is False and template.deactivated_by is None:
        template.deactivated_by = actor
    template_full_clean(template)
    template.save()
    return template


# --- alerts ------------------------------------------------------------------------------


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
