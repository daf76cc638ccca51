"""Decision deadlines and reminder times (issue 13): how they are written,
and what is wrong with a template's or a request's settings.

A duration is written as automation's time conditions write one (``30m``,
``2h``, ``3d``, ``1w``: one whole number, one unit of s, m, h, d or w), so an
operator learns one spelling. Reminder times are durations *before* the
deadline, comma-separated (``"1d, 2h"``). Pure functions: the model's
``clean``, the request service and the admin form all ask these.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError

from approvals.choices import DeadlinePolicy
from automation.actions import recipients as recipient_refs
from automation.choices import PEOPLE_CHANNELS
from automation.conditions import parse_interval

# Longer than any approval should wait; also keeps due_at far from the
# database's date limits.
MAX_DEADLINE = timedelta(days=366)
DURATION_HELP = "a whole number and a unit: s, m, h, d or w (e.g. 30m, 2h, 3d)"
_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_duration(value: Any, *, what: str) -> timedelta:
    """``"3d"`` → 3 days; ``ValueError`` with a message naming ``what`` for
    anything else (a negative or zero duration, a bad unit, too long)."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.startswith("-"):
        raise ValueError(f"{what} {text!r} is negative; give {DURATION_HELP}.")
    duration = parse_interval(text)
    if duration is None:
        shown = str(value)[:40]
        raise ValueError(f"{what} {shown!r} is not a duration; give {DURATION_HELP}.")
    if duration > MAX_DEADLINE:
        raise ValueError(f"{what} {text!r} is longer than {MAX_DEADLINE.days} days.")
    return duration


def format_duration(duration: timedelta) -> str:
    """The largest unit that writes ``duration`` exactly: 172800 s → ``2d``."""
    seconds = int(duration.total_seconds())
    for unit, size in _UNITS:
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def split_reminders(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def reminder_problems(
    text: str, *, deadline: timedelta | None
) -> tuple[list[timedelta], list[str]]:
    """The reminder offsets written in ``text`` (largest first, i.e. soonest
    first), and what is wrong with them: not a duration, negative, twice, or
    not strictly before the deadline and after the request."""
    offsets, problems = [], []
    parts = split_reminders(text)
    if parts and deadline is None:
        return [], ["Reminders need a decision deadline to count back from."]
    for part in parts:
        try:
            offset = parse_duration(part, what="Reminder")
        except ValueError as error:
            problems.append(str(error))
            continue
        if offset in offsets:
            problems.append(f"Reminder {part!r} is listed twice.")
        elif offset >= deadline:
            problems.append(
                f"Reminder {part!r} before a deadline of {format_duration(deadline)} would be "
                "due before the request is made; a reminder must fall between the request and "
                "the deadline."
            )
        else:
            offsets.append(offset)
    return sorted(set(offsets), reverse=True), problems


def split_channels(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def template_deadline_problems(
    *,
    deadline: str,
    reminders: str,
    reminder_recipients: Any,
    reminder_channels: str,
    policy: str,
    escalation_recipients: Any,
) -> dict[str, list[str]]:
    """A template's deadline settings, checked: field → problems."""
    errors: dict[str, list[str]] = {}
    duration = None
    if deadline:
        try:
            duration = parse_duration(deadline, what="Deadline")
        except ValueError as error:
            errors["decision_deadline"] = [str(error)]
    if reminders and "decision_deadline" not in errors:
        _offsets, problems = reminder_problems(reminders, deadline=duration)
        if problems:
            errors["reminders_before"] = problems
    unknown = [c for c in split_channels(reminder_channels) if c not in PEOPLE_CHANNELS]
    if unknown:
        errors["reminder_channels"] = [
            f"Unknown channel(s) {', '.join(unknown)}; use {', '.join(PEOPLE_CHANNELS)}."
        ]
    elif reminders and not split_channels(reminder_channels):
        errors["reminder_channels"] = ["Reminders need at least one channel."]
    for field, value in (
        ("reminder_recipients", reminder_recipients),
        ("escalation_recipients", escalation_recipients),
    ):
        try:
            recipient_refs.resolve(value, key=field)
        except ValidationError as error:
            errors[field] = error.messages
    if policy and policy not in DeadlinePolicy.values:
        errors["deadline_policy"] = [f"Choose one of {', '.join(DeadlinePolicy.values)}."]
    elif (
        policy == DeadlinePolicy.ESCALATE
        and deadline
        and "escalation_recipients" not in errors
        and not any((escalation_recipients or {}).get(part) for part in ("users", "roles"))
    ):
        errors["escalation_recipients"] = [
            "The escalate policy needs a user or role to alert when the deadline passes."
        ]
    return errors
