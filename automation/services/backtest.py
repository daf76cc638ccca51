"""A backtest: what would this rule have done over a past window?

The rule — a saved one, or a definition that is not saved — is matched
against the stored outbox events of its entity and trigger, with the same
condition evaluation the worker uses (``event_matched_rules`` evaluates the
event's stored values, not today's row). Nothing is written and nothing is
sent: each action is only rendered (its config, with the event's values) and,
for a sample of the matches, previewed the way a dry run previews it.

History is read in id order, in batches (keyset: ``id > last``), as tuples of
the columns needed; memory is bounded by the batch and the sample, whatever
the window holds. What the rules actually did is read per batch too: the
executions of the events in the batch, grouped by rule and status.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from automation.actions import ActionContext, action_registry
from automation.choices import Trigger
from automation.conditions import evaluate
from automation.engine import Target, action_config, active_actions
from automation.entities import event_values, field_key_for, resolve_entity
from automation.models import (
    AutomationEvent,
    AutomationExecution,
    AutomationRule,
    RuleAction,
)
from automation.permissions import DRY_RUN_RULE, require
from automation.services.rules import rule_actions_check
from automation.validation import rule_full_clean
from automation.webhooks import mask_config
from config.errors import InvalidInput

MAX_DAYS = 366
BATCH_SIZE = 2000
SAMPLE_SIZE = 50


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    @classmethod
    def of(
        cls,
        *,
        days: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Window:
        """The last ``days`` days, or ``since``–``until`` (``until`` defaults to now)."""
        now = timezone.now()
        if days is not None:
            if since is not None:
                raise ValidationError({"days": ["Give days or since, not both."]})
            if isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
                raise ValidationError({"days": [f"Must be from 1 to {MAX_DAYS}."]})
            until = until or now
            try:
                since = until - timedelta(days=days)
            except OverflowError:
                raise ValidationError({"until": ["Too early a date."]}) from None
        if since is None:
            raise ValidationError({"days": ["Give days, or since (and until)."]})
        until = until or now
        if since >= until:
            raise ValidationError({"until": ["Must be after since."]})
        if until - since > timedelta(days=MAX_DAYS):
            raise ValidationError({"since": [f"A window spans at most {MAX_DAYS} days."]})
        return cls(since=since, until=until)

    def as_dict(self) -> dict[str, str]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat()}


def rule_unsaved(
    *,
    entity,
    trigger_type,
    trigger_conditions: Any = None,
    actions: list[dict[str, Any]] | None = None,
    name: str = "",
    **_ignored: Any,
) -> tuple[AutomationRule, list[RuleAction]]:
    """A rule and its actions built in memory from a definition (the API's
    rule body), checked as ``rule_save`` checks them, and never saved."""
    rule = AutomationRule(
        name=name or "unsaved rule",
        entity=entity,
        entity_type=entity.entity_type,
        trigger_type=trigger_type,
        trigger_conditions=trigger_conditions if trigger_conditions is not None else {},
        version=0,
    )
    # Who created it is not a question for a rule that is never saved.
    rule_full_clean(rule, exclude=["created_by", "updated_by"])
    actions = actions or []
    rule_actions_check(entity, actions)
    built = [
        RuleAction(
            rule=rule,
            name=a.get("name") or a["action_type"],
            action_type=a["action_type"],
            action_config=a.get("action_config", {}),
            execution_order=a["execution_order"],
            is_active=a.get("is_active", True),
            template=a.get("template"),
        )
        for a in actions
    ]
    built = sorted((a for a in built if a.is_active), key=lambda a: a.execution_order)
    return rule, built


def rule_backtest(
    *,
    actor,
    window: Window,
    rule: AutomationRule | None = None,
    definition: dict[str, Any] | None = None,
    sample_size: int = SAMPLE_SIZE,
    batch_size: int = BATCH_SIZE,
) -> dict[str, Any]:
    """Match a saved ``rule`` (or an unsaved ``definition``) against the
    events stored in ``window``; compare with what the rules really did."""
    require(actor, DRY_RUN_RULE, doing="backtest automation rules")
    if (rule is None) == (definition is None):
        raise InvalidInput("Give a saved rule or a rule definition.", code="automation.backtest")
    if rule is not None:
        actions = active_actions(rule)
    else:
        rule, actions = rule_unsaved(**definition)
    trigger = rule.trigger_type.name
    if trigger == Trigger.SCHEDULED:
        raise InvalidInput(
            "A backtest replays stored entity events; a scheduled rule matches the rows "
            "as they are when it runs, and none of its past inputs are stored.",
            code="automation.backtest_scheduled",
            extra={"field": "trigger_type"},
        )
    started = time.monotonic()
    tally = _Tally(rule=rule, actions=actions, sample_size=sample_size)
    # Previews only read; the transaction that is always rolled back is the
    # second line of defence, as in the dry run.
    try:
        with transaction.atomic():
            _scan(rule, trigger, window, tally, batch_size=batch_size)
            _sample_times(tally)
            raise _Rollback
    except _Rollback:
        pass
    return {
        "rule": rule.pk,
        "rule_version": rule.version if rule.pk else None,
        "rule_name": rule.name,
        "entity": rule.entity.name,
        "trigger": trigger,
        "window": window.as_dict(),
        **tally.as_dict(),
        "elapsed_ms": round((time.monotonic() - started) * 1000),
    }


class _Rollback(Exception):
    pass


class _Tally:
    """What the scan found, kept small: counts, and the first ``sample_size``
    matches with their previews."""

    def __init__(self, *, rule: AutomationRule, actions: list, sample_size: int) -> None:
        self.rule = rule
        self.actions = actions
        self.sample_size = sample_size
        self.scanned = 0
        self.matched = 0
        self.rows: set[str] = set()
        self.row_limit = 10_000  # distinct rows counted exactly up to here
        self.rows_overflow = False
        self.sample: list[dict[str, Any]] = []
        self.would_run = Counter()
        self.action_errors = Counter()
        self.first_error: dict[int, str] = {}
        self.by_rule = Counter()  # executions of any rule on the window's events
        self.by_status = Counter()  # this rule's executions, by status
        self.matched_not_executed = 0
        self.executed_not_matched = 0

    def add_row(self, object_pk: str) -> None:
        if len(self.rows) < self.row_limit:
            self.rows.add(object_pk)
        elif object_pk not in self.rows:
            self.rows_overflow = True

    def as_dict(self) -> dict[str, Any]:
        saved = self.rule.pk is not None
        return {
            "events_scanned": self.scanned,
            "matched": self.matched,
            "matched_rows": len(self.rows),
            "matched_rows_at_least": self.rows_overflow,
            "sample": self.sample,
            "actions": [
                {
                    "position": position,
                    "name": action.name,
                    "action_type": action.action_type,
                    "would_run": self.would_run[position],
                    "errors": self.action_errors[position],
                    "first_error": self.first_error.get(position, ""),
                }
                for position, action in enumerate(self.actions, start=1)
            ],
            "actual": {
                "this_rule": (
                    {
                        "executions": sum(self.by_status.values()),
                        "by_status": dict(sorted(self.by_status.items())),
                        "matched_not_executed": self.matched_not_executed,
                        "executed_not_matched": self.executed_not_matched,
                    }
                    if saved
                    else None
                ),
                "all_rules": _rule_names(self.by_rule),
            },
        }


def _rule_names(by_rule: Counter) -> list[dict[str, Any]]:
    names = dict(AutomationRule.objects.filter(pk__in=by_rule).values_list("pk", "name"))
    return [
        {"rule": rule_id, "name": names.get(rule_id, ""), "executions": count}
        for rule_id, count in sorted(by_rule.items(), key=lambda item: (-item[1], item[0]))
    ]


def _scan(rule, trigger: str, window: Window, tally: _Tally, *, batch_size: int) -> None:
    model = resolve_entity(rule.entity.model_label)
    key = field_key_for(model)
    events = AutomationEvent.objects.filter(
        entity_id=rule.entity_id,
        trigger=trigger,
        created_at__gte=window.since,
        created_at__lt=window.until,
    ).order_by("id")
    last = 0
    while True:
        batch = list(
            events.filter(id__gt=last).values_list("id", "object_pk", "new_values", "old_values")[
                :batch_size
            ]
        )
        if not batch:
            return
        last = batch[-1][0]
        matched_ids = set()
        for event_id, object_pk, new_values, old_values in batch:
            old = old_values if trigger == Trigger.ON_UPDATE else None
            values = event_values(model, new_values if new_values is not None else old_values)
            matched, conditions = evaluate(
                rule.trigger_conditions, new=values, old=old, field_key=key
            )
            if not matched:
                continue
            matched_ids.add(event_id)
            tally.matched += 1
            tally.add_row(object_pk)
            target = Target(
                model=model,
                entity_name=rule.entity.name,
                object_pk=object_pk,
                trigger=trigger,
                new_values=new_values,
                old_values=old_values,
            )
            entry = _actions_of(rule, tally, target, preview=len(tally.sample) < tally.sample_size)
            if entry is not None:
                tally.sample.append(
                    {
                        "event": event_id,
                        "id": object_pk,
                        "at": None,  # read for the sample only, at the end
                        "conditions": [c.as_dict() for c in conditions],
                        "actions": entry,
                    }
                )
        tally.scanned += len(batch)
        _compare(rule, tally, window, first=batch[0][0], last=last, matched_ids=matched_ids)


def _sample_times(tally: _Tally) -> None:
    at = dict(
        AutomationEvent.objects.filter(pk__in=[m["event"] for m in tally.sample]).values_list(
            "pk", "created_at"
        )
    )
    for match in tally.sample:
        match["at"] = at[match["event"]].isoformat()


def _actions_of(rule, tally: _Tally, target: Target, *, preview: bool) -> list | None:
    """Render every action's config (cheap, in memory) to count what would
    run and what would fail; preview only the sampled matches."""
    entries = []
    for position, action in enumerate(tally.actions, start=1):
        entry: dict[str, Any] = {"name": action.name, "action_type": action.action_type}
        try:
            config = action_config(action, rule, target)
            if preview:
                entry["config"] = mask_config(config)
                entry["would"] = action_registry.get(action.action_type).preview(
                    config,
                    ActionContext(
                        rule=rule,
                        action=action,
                        execution=None,
                        model=target.model,
                        entity_name=target.entity_name,
                        object_pk=target.object_pk,
                        trigger=target.trigger,
                        new_values=target.new_values,
                        old_values=target.old_values,
                    ),
                )
        except (ValidationError, InvalidInput) as error:
            message = error.message if isinstance(error, InvalidInput) else " ".join(error.messages)
            tally.action_errors[position] += 1
            tally.first_error.setdefault(position, message)
            entry["error"] = message
        else:
            tally.would_run[position] += 1
        entries.append(entry)
    return entries if preview else None


def _compare(
    rule, tally: _Tally, window: Window, *, first: int, last: int, matched_ids: set[int]
) -> None:
    """What the rules really did with this batch's events: executions by rule,
    and for a saved rule which matches it did not run and which runs it
    would not match now."""
    executions = AutomationExecution.objects.filter(
        event_id__gte=first,
        event_id__lte=last,
        event__entity_id=rule.entity_id,
        event__trigger=rule.trigger_type.name,
        event__created_at__gte=window.since,
        event__created_at__lt=window.until,
    )
    for row in executions.values("rule_id", "status").annotate(n=Count("id")).order_by():
        tally.by_rule[row["rule_id"]] += row["n"]
        if rule.pk is not None and row["rule_id"] == rule.pk:
            tally.by_status[row["status"]] += row["n"]
    if rule.pk is None:
        return
    executed = set(executions.filter(rule_id=rule.pk).values_list("event_id", flat=True))
    tally.matched_not_executed += len(matched_ids - executed)
    tally.executed_not_matched += len(executed - matched_ids)
