from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models

from automation.actions import ActionContext
from automation.entities import is_inbound, is_secret_name, json_value
from automation.registry import entity_registry

_KEYS = {"field", "value"}


def resolve_target(
    model: type[models.Model], path: str
) -> tuple[models.Field | None, models.Field]:
    """``"status"`` → (None, status field); ``"workspace.name"`` → (the
    workspace FK, Workspace.name). ValidationError naming what is wrong."""
    parts = path.split(".") if isinstance(path, str) and path else []
    if not 1 <= len(parts) <= 2:
        raise ValidationError(
            f"update_field: field must be 'name' or 'relation.name', got {path!r}."
        )
    try:
        first = model._meta.get_field(parts[0])
    except FieldDoesNotExist:
        raise ValidationError(
            f"update_field: {model._meta.label} has no field {parts[0]!r}."
        ) from None
    if len(parts) == 1:
        _check_writable(model, first)
        return None, first
    if not (first.many_to_one or first.one_to_one) or not first.concrete:
        raise ValidationError(f"update_field: {parts[0]!r} does not point to a single row.")
    related = first.related_model
    try:
        target = related._meta.get_field(parts[1])
    except FieldDoesNotExist:
        raise ValidationError(
            f"update_field: {related._meta.label} has no field {parts[1]!r}."
        ) from None
    _check_writable(related, target)
    return first, target


def _check_writable(model, field) -> None:
    if not getattr(field, "concrete", False) or field.primary_key or not field.editable:
        raise ValidationError(
            f"update_field: {model._meta.label}.{field.name} cannot be set by a rule."
        )
    if is_secret_name(field.name):
        raise ValidationError(
            f"update_field: {model._meta.label}.{field.name} holds a secret; rules cannot set it."
        )
    allowed = entity_registry.writable_fields(model._meta.label)
    if allowed is not None and field.name not in allowed:
        writable = ", ".join(allowed) if allowed else "none"
        raise ValidationError(
            f"update_field: {model._meta.label}.{field.name} cannot be set by a rule "
            f"(writable: {writable}); state changes go through the owning app's "
            "services, not automation."
        )


def check_value(field: models.Field, value: Any) -> Any:
    """The value converted to the field's type, or a ValidationError naming the field."""
    try:
        return field.clean(value, None)
    except ValidationError as error:
        raise ValidationError(
            f"update_field: {value!r} is not a valid value for {field.name}: "
            + " ".join(error.messages)
        ) from None
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(
            f"update_field: {value!r} is not a valid value for {field.name}."
        ) from None


class UpdateFieldAction:
    """update_field: ``field`` of the triggering row (``"status"``) or of a row
    it points to (``"workspace.name"``), set to ``value`` (placeholders allowed),
    type-checked against the field."""

    key = "update_field"
    label = "Update a field"

    def validate(self, config: dict[str, Any], *, model) -> None:
        if is_inbound(model):
            raise ValidationError(
                "update_field: an inbound source's events are posted JSON, not rows; "
                "there is no field to update."
            )
        unknown = sorted(set(config) - _KEYS)
        if unknown:
            raise ValidationError(f"update_field: unknown keys {', '.join(unknown)}.")
        if "value" not in config:
            raise ValidationError("update_field: value is required.")
        _relation, field = resolve_target(model, config.get("field"))
        value = config["value"]
        if not (isinstance(value, str) and "{{" in value):
            check_value(field, value)

    def _target(self, config, ctx: ActionContext):
        if is_inbound(ctx.model):  # refused when the rule is saved; never reached
            raise ValidationError("update_field: an inbound source's events have no row.")
        relation, field = resolve_target(ctx.model, config["field"])
        if relation is None:
            target_model, target_pk = ctx.model, ctx.object_pk
        else:
            target_model = relation.related_model
            target_pk = ctx.values.get(relation.attname)
            if target_pk is None:
                raise ValidationError(
                    f"update_field: {relation.name} is empty on this row; nothing to update."
                )
        instance = target_model._base_manager.filter(pk=target_pk).first()
        if instance is None:
            raise ValidationError(
                f"update_field: {target_model._meta.label} {target_pk} no longer exists."
            )
        return instance, field

    def preview(self, config: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        instance, field = self._target(config, ctx)
        value = check_value(field, config["value"])
        return {
            "would_update": {
                "model": instance._meta.label,
                "pk": json_value(instance.pk),
                "field": field.name,
                "old": json_value(field.value_from_object(instance)),
                "new": json_value(value),
            }
        }

    def run(self, config: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        instance, field = self._target(config, ctx)
        value = check_value(field, config["value"])
        old = field.value_from_object(instance)
        setattr(instance, field.attname, value)
        instance.save(update_fields=[field.name])
        return {
            "model": instance._meta.label,
            "pk": json_value(instance.pk),
            "field": field.name,
            "old": json_value(old),
            "new": json_value(value),
        }
