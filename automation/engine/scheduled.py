"""Scheduled rules: each due rule runs against the rows that match its
conditions, once per (rule, cron slot, row), then moves to its next slot."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from croniter import croniter
from django.db import models, transaction
from django.utils import timezone

from automation.choices import ExecutionStatus, Trigger
from automation.conditions import evaluate, time_filter
from automation.engine.execution import Target, rule_execute
from automation.engine.rules import LoadedRule, active_actions
from automation.entities import field_key_for, resolve_model, snapshot
from automation.models import AutomationRule
from automation.selectors import scheduled_rules_due
from config.transitions import lock_many
from operations.sanitize import sanitize_message

logger = logging.getLogger(__name__)


def next_run_after(cron: str, moment: datetime) -> datetime:
    return croniter(cron, timezone.localtime(moment)).get_next(datetime)


def scheduled_rules_run(*, now: datetime | None = None, tracker=None) -> dict[str, int]:
    """Run every due scheduled rule against the rows that match its
    conditions, once per (rule, cron slot, row). Each rule runs on its own:
    one that raises is rolled back, counted in ``rules_failed``, recorded on
    ``tracker`` and moved to its next slot, and the others still run."""
    now = now or timezone.now()
    counts: Counter = Counter()
    due = scheduled_rules_due(now=now)
    counts["rules_due"] = len(due)
    for rule_id in due:
        rule_counts: Counter = Counter()
        try:
            _run_scheduled_rule(rule_id, now, rule_counts)
        except Exception as error:  # noqa: BLE001 - one broken rule must not stop the tick
            logger.exception("scheduled rule %s failed", rule_id)
            counts["rules_failed"] += 1
            moved_to = _skip_to_next_slot(rule_id, now)
            message = sanitize_message(
                f"Scheduled rule {rule_id} failed ({type(error).__name__}: {error}); "
                + (f"next run {moved_to.isoformat()}." if moved_to else "next run unchanged."),
                limit=1000,
            )
            if tracker is not None:
                tracker.add_failure("automation.scheduled_rule_failed", message)
        else:
            counts.update(rule_counts)
    return dict(counts)


def _skip_to_next_slot(rule_id: int, now: datetime) -> datetime | None:
    """After a failed run: the rule's next slot after ``now`` (so it is not
    retried every tick), or None when even that cannot be worked out (then
    it stays due and fails, recorded, on each tick)."""
    try:
        with transaction.atomic():
            rule = next(iter(lock_many(AutomationRule, [rule_id])), None)
            if rule is None or not rule.cron_expression:
                return None
            rule.next_run_at = next_run_after(rule.cron_expression, now)
            rule.save(update_fields=["next_run_at"])
            return rule.next_run_at
    except Exception:  # noqa: BLE001 - recorded by the caller
        logger.exception("could not move scheduled rule %s to its next slot", rule_id)
        return None


def time_fields_of(model):
    """A condition's field name → (the column's attname, whether it is a date
    and not a date-time), for ``time_filter``."""
    fields = {}
    for field in model._meta.concrete_fields:
        is_date = isinstance(field, models.DateField) and not isinstance(
            field, models.DateTimeField
        )
        fields[field.name] = fields[field.attname] = (field.attname, is_date)
    return fields.__getitem__


def _run_scheduled_rule(rule_id: int, now: datetime, counts: Counter) -> None:
    with transaction.atomic():
        claimed = lock_many(
            AutomationRule.objects.select_related("entity", "trigger_type").filter(
                pk=rule_id, is_active=True, next_run_at__lte=now
            ),
            skip_locked=True,
        )
        rule = claimed[0] if claimed else None
        if rule is None:
            return  # another tick took it
        slot = rule.next_run_at
        loaded = LoadedRule(rule, active_actions(rule))
        model = resolve_model(rule.entity.model_label)
        key = field_key_for(model)
        # Time conditions ("older_than": "7d") are a filter in the database: the
        # rows outside the window are never read. The rest are evaluated here.
        rows = model._base_manager.filter(
            time_filter(rule.trigger_conditions, now=now, field_attname=time_fields_of(model))
        )
        for instance in rows.order_by("pk").iterator(chunk_size=500):
            counts["rows_checked"] += 1
            values = snapshot(instance)
            if not evaluate(rule.trigger_conditions, new=values, old=None, field_key=key, now=now)[
                0
            ]:
                continue
            counts["rows_matched"] += 1
            target = Target(
                model=model,
                entity_name=rule.entity.name,
                object_pk=str(instance.pk),
                trigger=Trigger.SCHEDULED,
                new_values=values,
                old_values=None,
            )
            execution, ran = rule_execute(loaded, target, schedule_slot=slot)
            if ran:
                counts["executions"] += 1
                if execution.status != ExecutionStatus.SUCCESS:
                    counts["failed"] += 1
        rule.last_run_at = now
        rule.next_run_at = next_run_after(rule.cron_expression, now)
        rule.save(update_fields=["last_run_at", "next_run_at"])
        counts["rules_run"] += 1
