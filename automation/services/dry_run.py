"""A dry run: which conditions match a row and what each action would do.

Nothing is written and nothing is sent: conditions are evaluated on a
snapshot, and each action's ``preview`` only reads. As a second line of
defence the whole run happens in a transaction that is always rolled back.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from automation.actions import ActionContext, action_registry
from automation.choices import Trigger
from automation.conditions import evaluate
from automation.engine import Target, action_config, active_actions
from automation.entities import (
    fetch_snapshot,
    field_key_for,
    field_names,
    is_inbound,
    resolve_entity,
)
from automation.models import AutomationRule
from automation.permissions import DRY_RUN_RULE, require
from automation.webhooks import mask_config
from config.errors import InvalidInput, NotFound


class _Rollback(Exception):
    pass


def _apply_changes(model, values: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    names = field_names(model)
    unknown = sorted(name for name in changes if name not in names)
    if unknown:
        raise ValidationError(
            {"changes": [f"Unknown field(s) on {model._meta.label}: {', '.join(unknown)}."]}
        )
    new = dict(values)
    for name, value in changes.items():
        field = (
            model._meta.get_field(name)
            if name in {f.name for f in model._meta.concrete_fields}
            else None
        )
        if field is None:
            field = next(f for f in model._meta.concrete_fields if f.attname == name)
        try:
            field.to_python(value)
        except ValidationError as error:
            raise ValidationError({"changes": [f"{name}: {' '.join(error.messages)}"]}) from None
        except (TypeError, ValueError, OverflowError):
            raise ValidationError(
                {"changes": [f"{name}: {value!r} is not a valid value."]}
            ) from None
        new[names[name]] = value
    return new


def rule_dry_run(
    *,
    rule: AutomationRule,
    entity: str,
    object_id: Any,
    changes: dict[str, Any] | None = None,
    actor=None,
) -> dict[str, Any]:
    require(actor, DRY_RUN_RULE, doing="dry-run automation rules")
    if entity not in (rule.entity.name, rule.entity.model_label):
        raise InvalidInput(
            f"This rule watches {rule.entity.name}, not {entity}.",
            code="automation.wrong_entity",
            extra={"field": "entity"},
        )
    model = resolve_entity(rule.entity.model_label)
    if is_inbound(model):
        raise InvalidInput(
            f"{rule.entity.name} is an inbound source: it has no rows to dry-run a rule on. "
            "Backtest the rule against the events it received instead.",
            code="automation.dry_run_inbound",
            extra={"field": "entity"},
        )
    try:
        current = fetch_snapshot(model, object_id)
    except (ValueError, ValidationError):
        current = None
    if current is None:
        raise NotFound(f"{rule.entity.name} {object_id} does not exist.", code="automation.no_row")
    trigger = rule.trigger_type.name
    if trigger == Trigger.ON_UPDATE:
        old, new = current, _apply_changes(model, current, changes or {})
    else:
        if changes:
            raise InvalidInput(
                "changes only apply to on_update rules.", code="automation.changes_not_allowed"
            )
        old, new = None, current
    result: dict[str, Any] = {}
    try:
        with transaction.atomic():
            result = _evaluate(rule, model, trigger, str(object_id), new, old)
            raise _Rollback
    except _Rollback:
        pass
    return result


def _evaluate(rule, model, trigger, object_pk, new, old) -> dict[str, Any]:
    matched, conditions = evaluate(
        rule.trigger_conditions, new=new, old=old, field_key=field_key_for(model)
    )
    target = Target(
        model=model,
        entity_name=rule.entity.name,
        object_pk=object_pk,
        trigger=trigger,
        new_values=new,
        old_values=old,
    )
    actions = []
    for action in active_actions(rule):
        entry: dict[str, Any] = {
            "action_id": action.pk,
            "name": action.name,
            "action_type": action.action_type,
            "execution_order": action.execution_order,
        }
        try:
            config = action_config(action, rule, target)
            entry["config"] = mask_config(config)
            ctx = ActionContext(
                rule=rule,
                action=action,
                execution=None,
                model=model,
                entity_name=rule.entity.name,
                object_pk=object_pk,
                trigger=trigger,
                new_values=new,
                old_values=old,
            )
            entry["would"] = action_registry.get(action.action_type).preview(config, ctx)
        except ValidationError as error:
            entry["error"] = " ".join(error.messages)
        except InvalidInput as error:
            entry["error"] = error.message
        actions.append(entry)
    return {
        "rule": rule.pk,
        "rule_version": rule.version,
        "entity": rule.entity.name,
        "id": object_pk,
        "trigger": trigger,
        "matched": matched,
        "conditions": [c.as_dict() for c in conditions],
        "actions": actions,
    }
