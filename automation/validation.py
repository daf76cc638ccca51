"""Checks run when a rule, action or template is saved (admin and API alike):
anything that can be known to be wrong is a 400 naming it, not a failed
execution later."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from croniter import CroniterBadDateError, croniter
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from automation.actions import action_registry
from automation.choices import Trigger
from automation.conditions import (
    OLD_VALUE_OPERATORS,
    OPERATORS,
    TIME_OPERATORS,
    VALUELESS_OPERATORS,
    parse_interval,
)
from automation.entities import field_names, is_inbound, resolve_entity
from automation.placeholders import check_names, merge_config


def entity_model(entity):
    """The entity's model, or INBOUND_PAYLOAD for an inbound source's entity."""
    try:
        return resolve_entity(entity.model_label)
    except (LookupError, ValueError) as error:
        raise ValidationError({"entity": [str(error)]}) from None


# The one shape trigger_conditions takes, shown in every error about its shape.
CONDITIONS_SHAPE = (
    '{"field_conditions": [{"field_name": "name", "operator": "changed_to", "value": "Acme"}]}'
    " ({} for no conditions: every event matches)"
)


def condition_errors(conditions: Any, *, model, trigger: str | None) -> list[str]:
    if conditions == {}:
        return []
    if conditions is None:
        # The column is NOT NULL: a null here (a form's "null", a caller's None)
        # must be a field error, never an IntegrityError when the rule is saved.
        return [f"trigger_conditions may not be null; use {CONDITIONS_SHAPE}."]
    if not isinstance(conditions, dict):
        return [f"trigger_conditions must be an object: {CONDITIONS_SHAPE}."]
    errors = []
    unknown_keys = sorted(set(conditions) - {"field_conditions"})
    if unknown_keys:
        errors.append(
            f"Unknown key(s) in trigger_conditions: {', '.join(unknown_keys)}. "
            f"Conditions go in a list: {CONDITIONS_SHAPE}."
        )
    items = conditions.get("field_conditions", [])
    if not isinstance(items, list):
        return [*errors, f"field_conditions must be a list: {CONDITIONS_SHAPE}."]
    names = field_names(model)
    for number, condition in enumerate(items, start=1):
        where = f"Condition {number}"
        if not isinstance(condition, dict):
            errors.append(f"{where} must be an object with field_name, operator and value.")
            continue
        extra = sorted(set(condition) - {"field_name", "operator", "value"})
        if extra:
            errors.append(f"{where}: unknown key(s) {', '.join(extra)}.")
        operator = condition.get("operator")
        field_name = condition.get("field_name")
        if not isinstance(operator, str) or not isinstance(field_name, str):
            # A list or object here cannot be looked up (it is unhashable).
            errors.append(f"{where}: field_name and operator must be text.")
            continue
        if operator not in OPERATORS:
            errors.append(
                f"{where}: unknown operator {operator!r}; use one of {', '.join(OPERATORS)}."
            )
        if field_name not in names and is_inbound(model):
            errors.append(
                f"{where}: {field_name!r} is not a field path of {model.label} "
                "(a key, or dotted keys for a nested one: data.amount)."
            )
        elif field_name not in names:
            errors.append(
                f"{where}: unknown field {field_name!r} on {model._meta.label}; "
                f"fields: {', '.join(sorted({n for n in names}))}."
            )
        if operator in VALUELESS_OPERATORS:
            continue
        if "value" not in condition:
            errors.append(f"{where}: operator {operator!r} needs a value.")
        elif operator == "in" and not isinstance(condition["value"], list):
            errors.append(f"{where}: operator 'in' needs a list value.")
        elif operator in {"greater_than", "less_than"} and isinstance(
            condition["value"], list | dict
        ):
            errors.append(f"{where}: operator {operator!r} needs a single value.")
        if operator in TIME_OPERATORS:
            errors.extend(_time_condition_errors(where, operator, condition, model, names))
        if operator in OLD_VALUE_OPERATORS and trigger not in (None, Trigger.ON_UPDATE):
            errors.append(
                f"{where}: operator {operator!r} compares with the old value; "
                f"only on_update rules have one (this rule is {trigger})."
            )
    return errors


def _time_condition_errors(where, operator, condition, model, names) -> list[str]:
    errors = []
    if "value" in condition and parse_interval(condition["value"]) is None:
        errors.append(
            f'{where}: operator {operator!r} needs an interval such as "7d" or "30m" '
            "(a whole number and one of s, m, h, d, w)."
        )
    field_name = condition["field_name"]
    # A posted field's type is not known before it is posted: a value that is
    # not a date simply does not match (conditions.evaluate).
    if field_name in names and not is_inbound(model):
        field = next(f for f in model._meta.concrete_fields if names[field_name] == f.attname)
        if not isinstance(field, models.DateField):  # DateTimeField is one too
            errors.append(
                f"{where}: operator {operator!r} needs a date or date-time field; "
                f"{field_name!r} is not one."
            )
    return errors


def validate_rule(rule) -> None:
    errors: dict[str, list[str]] = {}
    if not rule.entity_id:
        return  # the form already says entity is required
    model = entity_model(rule.entity)
    if rule.entity_type_id and rule.entity_type_id != rule.entity.entity_type_id:
        errors["entity_type"] = [
            f"The entity {rule.entity.name} is a {rule.entity.entity_type.name}, "
            f"not a {rule.entity_type.name}."
        ]
    trigger = rule.trigger_type.name if rule.trigger_type_id else None
    if trigger is not None and (trigger == Trigger.INBOUND) != is_inbound(model):
        errors["trigger_type"] = [
            f"The entity {rule.entity.name} is an inbound source; its rules use the "
            "inbound trigger."
            if is_inbound(model)
            else f"The inbound trigger is for inbound sources; {rule.entity.name} is not one."
        ]
    condition_problems = condition_errors(rule.trigger_conditions, model=model, trigger=trigger)
    if condition_problems:
        errors["trigger_conditions"] = condition_problems
    if trigger == Trigger.SCHEDULED:
        if not rule.cron_expression:
            errors["cron_expression"] = ["A scheduled rule needs a cron expression."]
        elif not croniter.is_valid(rule.cron_expression):
            errors["cron_expression"] = [
                f"{rule.cron_expression!r} is not a valid cron expression."
            ]
        else:
            # is_valid accepts expressions that never fire ("0 0 30 2 *"):
            # computing the next run is what tells.
            try:
                croniter(rule.cron_expression, timezone.localtime()).get_next(datetime)
            except (CroniterBadDateError, ValueError, OverflowError):
                errors["cron_expression"] = [
                    f"{rule.cron_expression!r} never fires (no such date)."
                ]
    elif rule.cron_expression:
        errors["cron_expression"] = ["Only scheduled rules take a cron expression."]
    if errors:
        raise ValidationError(errors)


def action_config_errors(*, action_type: str, config: Any, template=None, model) -> list[str]:
    if action_type not in action_registry:
        return [
            f"unknown action type {action_type!r}; use one of {', '.join(action_registry.keys())}."
        ]
    if not isinstance(config, dict):
        return ["action_config must be an object."]
    if template is not None and template.action_type != action_type:
        return [f"the template {template.name!r} is for {template.action_type}, not {action_type}."]
    merged = merge_config(template.default_config if template else {}, config)
    problems = []
    unknown = check_names(merged, field_names(model))
    if unknown:
        problems.append(
            "unknown placeholder(s) " + ", ".join(f"{{{{{n}}}}}" for n in unknown) + "."
        )
    try:
        action_registry.get(action_type).validate(merged, model=model)
    except ValidationError as error:
        problems.extend(error.messages)
    return problems


def validate_template(template) -> None:
    if template.action_type not in action_registry:
        raise ValidationError(
            {
                "action_type": [
                    f"Unknown action type {template.action_type!r}; use one of "
                    f"{', '.join(action_registry.keys())}."
                ]
            }
        )
    if not isinstance(template.default_config, dict):
        raise ValidationError({"default_config": ["default_config must be an object."]})


def _full_clean(instance, check, exclude=None) -> None:
    """``instance.full_clean()`` and ``check(instance)``, their errors in one
    ValidationError (as a model's own ``clean()`` would give them)."""
    errors: dict = {}
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as error:
        errors = error.update_error_dict(errors)
    try:
        check(instance)
    except ValidationError as error:
        errors = error.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)


def rule_full_clean(rule, *, exclude=None) -> None:
    """Everything a rule must satisfy before it is saved: its fields, its
    entity, conditions and schedule (``exclude``: fields not to check, as
    ``Model.full_clean``'s)."""
    _full_clean(rule, validate_rule, exclude=exclude)


def template_full_clean(template) -> None:
    _full_clean(template, validate_template)
