"""Rule conditions: ``{"field_conditions": [{"field_name", "operator", "value"}]}``.

Conditions are ANDed; no conditions match every event. Comparisons follow the
public code behind seed 002: numbers are compared as numbers when both sides
are numbers (a numeric string counts), everything else as text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

OPERATORS = (
    "equals",
    "not_equals",
    "changed_from",
    "changed_to",
    "greater_than",
    "less_than",
    "contains",
    "in",
    "is_null",
    "is_not_null",
)
# Operators that compare against the old row: only meaningful for updates.
OLD_VALUE_OPERATORS = frozenset({"changed_from", "changed_to"})
VALUELESS_OPERATORS = frozenset({"is_null", "is_not_null"})


@dataclass(frozen=True)
class ConditionResult:
    field_name: str
    operator: str
    value: Any
    actual: Any
    old: Any
    matched: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "field_name": self.field_name,
            "operator": self.operator,
            "value": self.value,
            "actual": self.actual,
            "old": self.old,
            "matched": self.matched,
        }


def field_conditions(trigger_conditions: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not trigger_conditions:
        return []
    return list(trigger_conditions.get("field_conditions") or [])


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def values_equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, bool) or isinstance(right, bool):
        return _as_text(left).lower() == _as_text(right).lower()
    left_number, right_number = _as_number(left), _as_number(right)
    if left_number is not None and right_number is not None:
        return left_number == right_number
    return _as_text(left) == _as_text(right)


def _compare(left: Any, right: Any) -> int | None:
    if left is None or right is None:
        return None
    left_number, right_number = _as_number(left), _as_number(right)
    if left_number is not None and right_number is not None:
        return (left_number > right_number) - (left_number < right_number)
    left_text, right_text = _as_text(left), _as_text(right)
    return (left_text > right_text) - (left_text < right_text)


def _contains(actual: Any, value: Any) -> bool:
    if actual is None:
        return False
    if isinstance(actual, list | tuple):
        return any(values_equal(item, value) for item in actual)
    if isinstance(actual, dict):
        return _as_text(value) in actual
    return _as_text(value) in _as_text(actual)


def evaluate_one(operator: str, *, actual: Any, old: Any, value: Any, has_old: bool) -> bool:
    if operator == "equals":
        return values_equal(actual, value)
    if operator == "not_equals":
        return not values_equal(actual, value)
    if operator == "changed_from":
        return has_old and values_equal(old, value)
    if operator == "changed_to":
        return has_old and values_equal(actual, value) and not values_equal(old, value)
    if operator == "greater_than":
        result = _compare(actual, value)
        return result is not None and result > 0
    if operator == "less_than":
        result = _compare(actual, value)
        return result is not None and result < 0
    if operator == "contains":
        return _contains(actual, value)
    if operator == "in":
        return isinstance(value, list | tuple) and any(values_equal(actual, v) for v in value)
    if operator == "is_null":
        return actual is None
    if operator == "is_not_null":
        return actual is not None
    raise ValueError(f"unknown operator {operator!r}")


def evaluate(
    trigger_conditions: Mapping[str, Any] | None,
    *,
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    field_key=lambda name: name,
) -> tuple[bool, list[ConditionResult]]:
    """Evaluate every condition (no short-circuit, so a dry run shows them
    all). ``new`` is the row after the change (the row itself for a delete),
    ``old`` the row before an update (None otherwise). ``field_key`` maps a
    condition's field name to the snapshot key (``workspace`` → ``workspace_id``)."""
    results = []
    for condition in field_conditions(trigger_conditions):
        name = condition.get("field_name", "")
        key = field_key(name)
        operator = condition.get("operator", "")
        value = condition.get("value")
        actual = (new or {}).get(key)
        old_value = (old or {}).get(key) if old is not None else None
        matched = evaluate_one(
            operator, actual=actual, old=old_value, value=value, has_old=old is not None
        )
        results.append(ConditionResult(name, operator, value, actual, old_value, matched))
    return all(r.matched for r in results), results
