"""Running rules: the outbox worker, rule executions, scheduled ticks.

The outbox is drained in batches. A batch is one transaction: its events are
taken with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite has one
writer at a time anyway), every (event, rule) pair becomes an execution whose
row is unique per pair, and the events are marked processed before the
commit. A worker that dies mid-batch rolls the whole batch back: its events
are pending again and nothing it did is half-kept. Each event runs in a
savepoint so one broken event cannot block the batch; each action runs in a
savepoint so a failed action leaves no trace but its error.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from croniter import croniter
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from automation import conf
from automation.actions import ActionContext, action_registry
from automation.choices import EventStatus, ExecutionStatus, Trigger
from automation.conditions import evaluate
from automation.entities import field_key_for, field_names, resolve_model, snapshot
from automation.events import chain_context
from automation.models import (
    AutomationEvent,
    AutomationExecution,
    AutomationRule,
    IdempotencyRecord,
    RuleDependency,
)
from automation.permissions import REPLAY_EVENT, require
from automation.placeholders import merge_config, render, variables_for
from config.errors import ApplicationError, Conflict, NotFound
from config.transitions import each_or_all, lock, lock_many, transition_if
from operations.sanitize import sanitize_message

logger = logging.getLogger(__name__)


# --- loading rules ---------------------------------------------------------------------


@dataclass
class LoadedRule:
    rule: AutomationRule
    actions: list


@dataclass
class RuleBook:
    """Active rules per (entity, trigger) with their actions, read once per batch."""

    _rules: dict[tuple[int, str], list[LoadedRule]] = field(default_factory=dict)
    _parents: dict[int, set[int]] = field(default_factory=dict)
    # Handed to the actions (ActionContext.cache) for lookups they may reuse.
    cache: dict = field(default_factory=dict)

    def rules_for(self, entity_id: int, trigger: str) -> list[LoadedRule]:
        key = (entity_id, trigger)
        if key not in self._rules:
            rules = list(
                AutomationRule.objects.filter(
                    entity_id=entity_id, trigger_type__name=trigger, is_active=True
                )
                .select_related("entity", "trigger_type")
                .order_by("id")
            )
            self._rules[key] = [LoadedRule(rule, active_actions(rule)) for rule in rules]
            ids = [r.pk for r in rules]
            for link in RuleDependency.objects.filter(child_rule_id__in=ids).values_list(
                "parent_rule_id", "child_rule_id"
            ):
                self._parents.setdefault(link[1], set()).add(link[0])
        return self._rules[key]

    def parents_of(self, rule_id: int) -> set[int]:
        return self._parents.get(rule_id, set())


def active_actions(rule: AutomationRule) -> list:
    return list(
        rule.actions.filter(is_active=True)
        .select_related("template")
        .order_by("execution_order", "id")
    )


def dependency_order(rule_ids: list[int], parents_of) -> list[int]:
    """Parents before children among ``rule_ids`` (stable by id otherwise).
    Cycles are refused when saved; should one exist anyway, its rules run in
    id order rather than not at all."""
    pending = sorted(rule_ids)
    members = set(pending)
    done: list[int] = []
    placed: set[int] = set()
    while pending:
        ready = [r for r in pending if not ((parents_of(r) & members) - placed)]
        if not ready:
            ready = pending[:1]
        for rule_id in ready:
            done.append(rule_id)
            placed.add(rule_id)
        pending = [r for r in pending if r not in placed]
    return done


# --- executing a rule ------------------------------------------------------------------


@dataclass
class Target:
    """The row a rule runs against."""

    model: Any
    entity_name: str
    object_pk: str
    trigger: str
    new_values: dict | None
    old_values: dict | None
    depth: int = 0


def _idempotency_key(execution, rule, action) -> str:
    return f"{execution.pk}:{rule.pk}:{action.pk}"


def action_config(action, rule, target: Target) -> dict:
    merged = merge_config(
        action.template.default_config if action.template else {}, action.action_config
    )
    variables = variables_for(
        field_names=field_names(target.model),
        new=target.new_values if target.new_values is not None else target.old_values,
        old=target.old_values if target.trigger == Trigger.ON_UPDATE else None,
        rule=rule,
        trigger=target.trigger,
        object_pk=target.object_pk,
    )
    return render(merged, variables)


class _ActionFailed(Exception):
    """Raised inside the optimistic savepoint to undo every action of the execution."""


def run_actions(
    execution: AutomationExecution,
    loaded: LoadedRule,
    target: Target,
    *,
    fresh: bool,
    cache: dict | None = None,
) -> tuple[str, list[dict], str]:
    """Run the rule's actions in order; stop at the first failure. Returns
    (status, per-action detail, error message).

    Every action's effects are transactional (deliveries are sent after
    commit), so a fresh execution first runs all its actions in one savepoint;
    only when one fails is that undone and the actions run again, each in its
    own savepoint, so the ones before the failure are kept. One savepoint
    instead of one per action is what the worker's throughput needs."""
    cache = cache if cache is not None else {}
    if fresh and len(loaded.actions) > 1:
        try:
            with transaction.atomic():
                return _run_action_list(
                    execution, loaded, target, fresh=True, cache=cache, isolate=False
                )
        except _ActionFailed:
            pass
    return _run_action_list(execution, loaded, target, fresh=fresh, cache=cache, isolate=True)


def _run_action_list(execution, loaded, target, *, fresh, cache, isolate):
    rule = loaded.rule
    details: list[dict] = []
    succeeded = failed = 0
    error_message = ""
    records: list[IdempotencyRecord] = []
    for action in loaded.actions:
        detail: dict[str, Any] = {
            "action_id": action.pk,
            "name": action.name,
            "action_type": action.action_type,
            "execution_order": action.execution_order,
        }
        if failed:
            details.append({**detail, "status": "not_run"})
            continue
        key = _idempotency_key(execution, rule, action)
        if not fresh:
            stored = IdempotencyRecord.objects.filter(idempotency_key=key).first()
            if stored is not None:
                details.append(
                    {**detail, "status": "success", "result": stored.result, "replayed": True}
                )
                succeeded += 1
                continue
        started = time.perf_counter()
        try:
            config = action_config(action, rule, target)
            ctx = ActionContext(
                rule=rule,
                action=action,
                execution=execution,
                model=target.model,
                entity_name=target.entity_name,
                object_pk=target.object_pk,
                trigger=target.trigger,
                new_values=target.new_values,
                old_values=target.old_values,
                cache=cache,
            )
            with chain_context(depth=target.depth, execution_id=execution.pk):
                if isolate:
                    with transaction.atomic():
                        result = action_registry.get(action.action_type).run(config, ctx)
                else:
                    result = action_registry.get(action.action_type).run(config, ctx)
        except Exception as error:  # noqa: BLE001 - recorded on the execution
            if not isolate:
                raise _ActionFailed from error
            failed += 1
            message = sanitize_message(_error_text(error))
            error_message = f"{action.name}: {message}"
            details.append({**detail, "status": "failed", "error": message})
            if not _expected(error):
                logger.exception("action %s of rule %s failed", action.pk, rule.pk)
        else:
            succeeded += 1
            # Written with the execution's status, in the same transaction.
            records.append(
                IdempotencyRecord(idempotency_key=key, result=result, execution=execution)
            )
            details.append(
                {
                    **detail,
                    "status": "success",
                    "result": result,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                }
            )
    IdempotencyRecord.objects.bulk_create(records)
    if not failed:
        status = ExecutionStatus.SUCCESS
    elif succeeded:
        status = ExecutionStatus.PARTIAL
    else:
        status = ExecutionStatus.FAILED
    return status, details, error_message


def _expected(error: Exception) -> bool:
    return isinstance(error, ValidationError | ApplicationError)


def _error_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return f"{type(error).__name__}: {error}"


def _trigger_data(target: Target, extra: dict | None = None) -> dict:
    return {
        "trigger": target.trigger,
        "object_pk": target.object_pk,
        "new": target.new_values,
        "old": target.old_values,
        **(extra or {}),
    }


def execute_rule(
    loaded: LoadedRule,
    target: Target,
    *,
    event: AutomationEvent | None = None,
    schedule_slot: datetime | None = None,
    skip_reason: str = "",
    rerun: bool = False,
    cache: dict | None = None,
    first_claim: bool = False,
) -> tuple[AutomationExecution, bool]:
    """Create the rule's execution for this event (or schedule slot and row)
    and run its actions. ``(execution, ran)``: when the pair already has an
    execution, that one is returned untouched (``ran`` False) unless
    ``rerun`` asks to finish a failed or partial one."""
    rule = loaded.rule
    started = time.perf_counter()
    # A claimed event processed for the first time cannot have an execution
    # yet (executions commit with the event's attempt count): no savepoint is
    # needed to survive a duplicate. Anything else may meet one.
    guard = transaction.atomic() if not first_claim else contextlib.nullcontext()
    try:
        with guard:
            execution = AutomationExecution.objects.create(
                rule=rule,
                rule_version=rule.version,
                event=event,
                schedule_slot=schedule_slot,
                entity_type=target.entity_name,
                object_pk=target.object_pk,
                trigger_data=_trigger_data(
                    target, {"changed_fields": event.changed_fields} if event else None
                ),
                status=ExecutionStatus.SKIPPED if skip_reason else ExecutionStatus.SUCCESS,
                error_message=skip_reason,
                depth=target.depth,
            )
    except IntegrityError:
        existing = _existing_execution(
            rule, event=event, slot=schedule_slot, object_pk=target.object_pk
        )
        if existing is None:
            raise
        if not rerun or existing.status == ExecutionStatus.SUCCESS or skip_reason:
            return existing, False
        if existing.rule_version != rule.version:
            # An edit recreates the rule's actions, so the idempotency keys of
            # the actions that succeeded no longer match: finishing the
            # execution would repeat their side effects.
            raise Conflict(
                f"Execution {existing.pk} ran version {existing.rule_version} of rule "
                f"{rule.name!r}, which is now at version {rule.version}; replaying it would "
                "repeat the actions that already succeeded.",
                code="automation.rule_changed_since_execution",
                extra={
                    "execution": existing.pk,
                    "execution_rule_version": existing.rule_version,
                    "rule_version": rule.version,
                },
            ) from None
        return _finish(existing, loaded, target, started, fresh=False, cache=cache), True
    if skip_reason:
        return execution, False
    return _finish(execution, loaded, target, started, fresh=True, cache=cache), True


def _existing_execution(rule, *, event, slot, object_pk):
    executions = AutomationExecution.objects.filter(rule=rule)
    if event is not None:
        executions = executions.filter(event=event)
    else:
        executions = executions.filter(schedule_slot=slot, object_pk=object_pk)
    return next(iter(lock_many(executions)), None)


def _finish(execution, loaded, target, started, *, fresh: bool, cache=None) -> AutomationExecution:
    status, details, error = run_actions(execution, loaded, target, fresh=fresh, cache=cache)
    # One conditional UPDATE: the execution is this transaction's own row (a
    # new one) or locked by _existing_execution (a replay).
    return transition_if(
        execution,
        status,
        actions_executed=details,
        error_message=error,
        execution_time_ms=int((time.perf_counter() - started) * 1000),
        rule_version=execution.rule_version,
    )


# --- events ----------------------------------------------------------------------------


def _chain_path(event: AutomationEvent, limit: int = 20) -> str:
    names = []
    execution = event.caused_by
    while execution is not None and len(names) < limit:
        names.append(f"{execution.rule.name!r} (execution {execution.pk})")
        parent_event = execution.event
        execution = parent_event.caused_by if parent_event else None
    return " ← ".join(names) if names else "(unknown)"


def target_for_event(event: AutomationEvent) -> Target:
    return Target(
        model=resolve_model(event.entity.model_label),
        entity_name=event.entity.name,
        object_pk=event.object_pk,
        trigger=event.trigger,
        new_values=event.new_values,
        old_values=event.old_values,
        depth=event.depth,
    )


def matched_rules(book: RuleBook, event: AutomationEvent, target: Target) -> list[LoadedRule]:
    key = field_key_for(target.model)
    old = event.old_values if event.trigger == Trigger.ON_UPDATE else None
    values = event.new_values if event.new_values is not None else event.old_values
    return [
        loaded
        for loaded in book.rules_for(event.entity_id, event.trigger)
        if evaluate(loaded.rule.trigger_conditions, new=values, old=old, field_key=key)[0]
    ]


def run_event(
    event: AutomationEvent,
    book: RuleBook,
    counts: Counter,
    *,
    rerun: bool = False,
    claimed: bool = False,
) -> None:
    """Run the rules ``event`` matches. ``claimed``: the caller holds the
    event's row lock from the outbox claim."""
    target = target_for_event(event)
    matched = {loaded.rule.pk: loaded for loaded in matched_rules(book, event, target)}
    counts["matched"] += len(matched)
    chain_reason = ""
    if matched and event.depth > conf.max_chain_depth():
        chain_reason = sanitize_message(
            f"Chain guard: event depth {event.depth} exceeds AUTOMATION_MAX_CHAIN_DEPTH "
            f"{conf.max_chain_depth()}; caused by {_chain_path(event)}.",
            limit=1000,
        )
        event.note = chain_reason
    outcome: dict[int, str] = {}
    for rule_id in dependency_order(list(matched), book.parents_of):
        loaded = matched[rule_id]
        reason = chain_reason
        if not reason:
            failed_parents = [
                p
                for p in sorted(book.parents_of(rule_id))
                if p in outcome and outcome[p] != ExecutionStatus.SUCCESS
            ]
            if failed_parents:
                names = ", ".join(
                    f"{matched[p].rule.name!r} ({outcome[p]})" for p in failed_parents
                )
                reason = f"Skipped: parent rule {names} did not succeed."
        execution, ran = execute_rule(
            loaded,
            target,
            event=event,
            skip_reason=reason,
            rerun=rerun,
            cache=book.cache,
            first_claim=claimed and event.attempts == 0,
        )
        outcome[rule_id] = execution.status
        if ran:
            counts["executions"] += 1
            if execution.status != ExecutionStatus.SUCCESS:
                counts["failed"] += 1
        elif execution.status == ExecutionStatus.SKIPPED and reason:
            counts["skipped"] += 1
        else:
            counts["duplicates"] += 1


def _event_failed(event: AutomationEvent, error: Exception, counts: Counter) -> None:
    """Record why ``event`` raised; it stays pending for another try, or is
    failed after its last attempt."""
    logger.exception("automation event %s failed", event.pk)
    attempts = event.attempts + 1
    note = sanitize_message(f"{type(error).__name__}: {error}")
    if attempts >= conf.event_max_attempts():
        transition_if(
            event, EventStatus.FAILED, attempts=attempts, note=note, processed_at=timezone.now()
        )
        counts["events_failed"] += 1
    else:
        event.attempts, event.note = attempts, note
        event.save(update_fields=["attempts", "note"])


def _run_one(event: AutomationEvent, book: RuleBook) -> tuple[AutomationEvent, Counter]:
    counts: Counter = Counter()
    run_event(event, book, counts, claimed=True)
    counts["events"] += 1
    return event, counts


def _run_events(events: list[AutomationEvent], counts: Counter) -> list[AutomationEvent]:
    """Run the claimed events: all of them in one savepoint, and should any
    raise, again one savepoint per event, so the broken one is recorded and
    the others still go through (a savepoint per event on the common path
    costs the worker a fifth of its throughput). The events that ran."""

    def together(batch: list[AutomationEvent]) -> list[tuple[AutomationEvent, Counter]]:
        book = RuleBook()
        return [_run_one(event, book) for event in batch]

    retry_book = RuleBook()
    done = each_or_all(
        events,
        together=together,
        alone=lambda event: _run_one(event, retry_book),
        failed=lambda event, error: _event_failed(event, error, counts),
        what="pending event",
    )
    for _event, event_counts in done:
        counts.update(event_counts)
    return [event for event, _counts in done]


def process_batch(*, batch_size: int | None = None, counts: Counter | None = None) -> int:
    """Claim a batch of pending events (rows another worker holds are
    skipped), run them and mark them processed, in one transaction."""
    counts = counts if counts is not None else Counter()
    with transaction.atomic():
        events = lock_many(
            AutomationEvent.objects.filter(status=EventStatus.PENDING).select_related("entity"),
            skip_locked=True,
            limit=batch_size or conf.outbox_batch_size(),
        )
        if not events:
            return 0
        now = timezone.now()
        for event in _run_events(events, counts):
            # event.note: the chain guard's reason, when it stopped the rules
            transition_if(
                event,
                EventStatus.PROCESSED,
                processed_at=now,
                attempts=event.attempts + 1,
                note=event.note,
            )
    return len(events)


def process_outbox(
    *, max_batches: int | None = None, batch_size: int | None = None
) -> dict[str, int]:
    """Drain pending events, a batch per transaction, until none are left or
    ``max_batches`` were done."""
    counts: Counter = Counter()
    for _ in range(max_batches or conf.outbox_max_batches()):
        if not process_batch(batch_size=batch_size, counts=counts):
            break
    return dict(counts)


def replay_event(event_id: int, *, actor=None) -> dict[str, int]:
    """Process one event again, whatever its status: rules without an
    execution run, failed or partial executions are finished (actions that
    already succeeded return their stored result), successful ones are left."""
    require(actor, REPLAY_EVENT, doing="replay automation events")
    counts: Counter = Counter()
    with transaction.atomic():
        event = lock(
            AutomationEvent.objects.select_related("entity"),
            pk=event_id,
            not_found=lambda: NotFound(
                f"Event {event_id} does not exist.", code="automation.no_event"
            ),
        )
        run_event(event, RuleBook(), counts, rerun=True)
        transition_if(
            event,
            EventStatus.PROCESSED,
            processed_at=timezone.now(),
            attempts=event.attempts + 1,
            note=event.note,
        )
    return dict(counts)


# --- scheduled rules -------------------------------------------------------------------


def next_run_after(cron: str, moment: datetime) -> datetime:
    return croniter(cron, timezone.localtime(moment)).get_next(datetime)


def run_scheduled_rules(*, now: datetime | None = None, tracker=None) -> dict[str, int]:
    """Run every due scheduled rule against the rows that match its
    conditions, once per (rule, cron slot, row). Each rule runs on its own:
    one that raises is rolled back, counted in ``rules_failed``, recorded on
    ``tracker`` and moved to its next slot, and the others still run."""
    now = now or timezone.now()
    counts: Counter = Counter()
    due = list(
        AutomationRule.objects.filter(
            is_active=True, trigger_type__name=Trigger.SCHEDULED, next_run_at__lte=now
        )
        .order_by("next_run_at", "id")
        .values_list("pk", flat=True)
    )
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
        for instance in model._base_manager.order_by("pk").iterator(chunk_size=500):
            counts["rows_checked"] += 1
            values = snapshot(instance)
            if not evaluate(rule.trigger_conditions, new=values, old=None, field_key=key)[0]:
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
            execution, ran = execute_rule(loaded, target, schedule_slot=slot)
            if ran:
                counts["executions"] += 1
                if execution.status != ExecutionStatus.SUCCESS:
                    counts["failed"] += 1
        rule.last_run_at = now
        rule.next_run_at = next_run_after(rule.cron_expression, now)
        rule.save(update_fields=["last_run_at", "next_run_at"])
        counts["rules_run"] += 1
