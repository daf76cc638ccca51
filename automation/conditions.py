"""Rule conditions: ``{"field_conditions": [{"field_name", "operator", "value"}]}``.

Conditions are ANDed; no conditions match every event. Comparisons follow the
public code behind seed 002: numbers are compared as numbers when both sides
are numbers (a numeric string counts), everything else as text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

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
    "older_than",
    "newer_than",
    "within_next",
)
# Operators that compare against the old row: only meaningful for updates.
OLD_VALUE_OPERATORS = frozenset({"changed_from", "changed_to"})
VALUELESS_OPERATORS = frozenset({"is_null", "is_not_null"})
# Operators on a date or date-time field against a relative interval ("7d",
# "30m"): older_than (before now − interval), newer_than (at or after now −
# interval), within_next (from now to now + interval). A scheduled rule
# evaluates them in the database (``time_filter``); events evaluate them here.
TIME_OPERATORS = frozenset({"older_than", "newer_than", "within_next"})
_INTERVAL = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_interval(value: Any) -> timedelta | None:
    """``"7d"`` → 7 days; None for anything else (units s, m, h, d, w)."""
    match = _INTERVAL.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _as_moment(value: Any) -> datetime | date | None:
    """A date-time (aware) or a date from a snapshot value, else None."""
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:  # "2026-11-23": a date (fromisoformat would make it midnight)
            return parse_date(value)
        moment = parse_datetime(value)
        if moment is not None:
            return moment if timezone.is_aware(moment) else timezone.make_aware(moment)
        return parse_date(value)
    except ValueError:
        return None


def time_bounds(
    operator: str, interval: timedelta, now: datetime
) -> tuple[datetime, datetime | None]:
    """The bound(s) an operator compares with: ``(low, high)``; ``older_than``
    matches below ``low``, the others ``low <= moment`` (``< high`` when given)."""
    if operator == "within_next":
        return now, now + interval
    return now - interval, None


def _time_matches(operator: str, actual: Any, value: Any, now: datetime) -> bool:
    interval, moment = parse_interval(value), _as_moment(actual)
    if interval is None or moment is None:
        return False
    low, high = time_bounds(operator, interval, now)
    if not isinstance(moment, datetime):  # a date: compared with the bounds' dates
        low, high = timezone.localtime(low).date(), high and timezone.localtime(high).date()
    if operator == "older_than":
        return moment < low
    return moment >= low and (high is None or moment < high)


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


def evaluate_one(
    operator: str, *, actual: Any, old: Any, value: Any, has_old: bool, now: datetime | None = None
) -> bool:
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
    if operator in TIME_OPERATORS:
        return _time_matches(operator, actual, value, now or timezone.now())
    raise ValueError(f"unknown operator {operator!r}")


def evaluate(
    trigger_conditions: Mapping[str, Any] | None,
    *,
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    field_key=lambda name: name,
    now: datetime | None = None,
) -> tuple[bool, list[ConditionResult]]:
    """Evaluate every condition (no short-circuit, so a dry run shows them
    all). ``new`` is the row after the change (the row itself for a delete),
    ``old`` the row before an update (None otherwise). ``field_key`` maps a
    condition's field name to the snapshot key (``workspace`` → ``workspace_id``)."""
    results = []
    now = now or timezone.now()
    for condition in field_conditions(trigger_conditions):
        name = condition.get("field_name", "")
        key = field_key(name)
        operator = condition.get("operator", "")
        value = condition.get("value")
        actual = (new or {}).get(key)
        old_value = (old or {}).get(key) if old is not None else None
        matched = evaluate_one(
            operator, actual=actual, old=old_value, value=value, has_old=old is not None, now=now
        )
        results.append(ConditionResult(name, operator, value, actual, old_value, matched))
    return all(r.matched for r in results), results


def time_filter(
    trigger_conditions: Mapping[str, Any] | None, *, now: datetime, field_attname=lambda n: n
) -> Q:
    """The time conditions as one database filter (the other conditions are
    left to ``evaluate``): what a scheduled rule reads instead of every row.
    A date field is compared with the bounds' local dates, as ``evaluate`` does."""
    q = Q()
    for condition in field_conditions(trigger_conditions):
        operator = condition.get("operator")
        interval = parse_interval(condition.get("value"))
        if operator not in TIME_OPERATORS or interval is None:
            continue
        name, is_date = field_attname(condition["field_name"])
        low, high = time_bounds(operator, interval, now)
        if is_date:
            low, high = timezone.localtime(low).date(), high and timezone.localtime(high).date()
        if operator == "older_than":
            q &= Q(**{f"{name}__lt": low})
        else:
            q &= Q(**{f"{name}__gte": low})
            if high is not None:
                q &= Q(**{f"{name}__lt": high})
    return q
