"""``{{field}}`` placeholders in action configs, filled from the entity.

Names: any field of the entity (``status``, ``workspace`` or ``workspace_id``;
for an inbound source, any path into the posted JSON: ``data.amount``),
``old.<field>`` (the value before an update), and ``rule.id``, ``rule.name``,
``event.trigger``, ``object_pk`` (an inbound event's: its idempotency key). A string that is exactly one placeholder
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


def is_allowed(name: str, field_names: Mapping[str, str]) -> bool:
    """``field_names`` may be open (an inbound source's: every well-formed
    path), so names are looked up, never listed."""
    return (
        name in EXTRA_NAMES
        or name in field_names
        or (name.startswith("old.") and name[4:] in field_names)
    )


def check_names(value: Any, field_names: Mapping[str, str]) -> list[str]:
    return sorted(name for name in names_in(value) if not is_allowed(name, field_names))


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
    used: set[str] = frozenset(),
) -> dict[str, Any]:
    """The values placeholders read. ``used``: the names a config uses, for
    field names that cannot be listed (an inbound source's)."""
    values: dict[str, Any] = {}
    for name, key in field_names.items():
        values[name] = (new or {}).get(key)
        values[f"old.{name}"] = (old or {}).get(key)
    for name in used:
        if name in values or name in EXTRA_NAMES:
            continue
        if name in field_names:
            values[name] = (new or {}).get(field_names[name])
        elif name.startswith("old.") and name[4:] in field_names:
            values[name] = (old or {}).get(field_names[name[4:]])
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
