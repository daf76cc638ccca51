"""``{{field}}`` placeholders in action configs, filled from the entity.

Names: any field of the entity (``status``, ``workspace`` or ``workspace_id``),
``old.<field>`` (the value before an update), and ``rule.id``, ``rule.name``,
``event.trigger``, ``object_pk``. A string that is exactly one placeholder
takes the value with its type (so ``update_field`` can set a number); inside
longer text values are formatted as text. An unknown name is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_WHOLE = re.compile(r"^\s*\{\{\s*([A-Za-z_][\w.]*)\s*\}\}\s*$")
EXTRA_NAMES = ("rule.id", "rule.name", "event.trigger", "object_pk")


def names_in(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, str):
        found.update(PLACEHOLDER.findall(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= names_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= names_in(item)
    return found


def allowed_names(field_names: Mapping[str, str]) -> set[str]:
    return {*field_names, *(f"old.{n}" for n in field_names), *EXTRA_NAMES}


def check_names(value: Any, field_names: Mapping[str, str]) -> list[str]:
    allowed = allowed_names(field_names)
    return sorted(name for name in names_in(value) if name not in allowed)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            return _lookup(whole.group(1), variables)
        return PLACEHOLDER.sub(lambda m: _text(_lookup(m.group(1), variables)), value)
    if isinstance(value, Mapping):
        return {key: render(item, variables) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, variables) for item in value]
    return value


def _lookup(name: str, variables: Mapping[str, Any]) -> Any:
    if name not in variables:
        raise ValidationError(f"Unknown placeholder {{{{{name}}}}}.", code="placeholder")
    return variables[name]


def variables_for(
    *,
    field_names: Mapping[str, str],
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    rule,
    trigger: str,
    object_pk: Any,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, key in field_names.items():
        values[name] = (new or {}).get(key)
        values[f"old.{name}"] = (old or {}).get(key)
    values.update(
        {
            "rule.id": rule.pk,
            "rule.name": rule.name,
            "event.trigger": trigger,
            "object_pk": object_pk,
        }
    )
    return values


def merge_config(default: Mapping[str, Any] | None, own: Mapping[str, Any] | None) -> dict:
    """The template's default_config with the action's own config merged over
    it (nested mappings merged key by key)."""
    merged: dict[str, Any] = dict(default or {})
    for key, value in (own or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = value
    return merged
