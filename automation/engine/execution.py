"""Running one rule against one row: its execution (unique per event and
rule, or per schedule slot and row), its actions in order, each action's
effects and idempotency record in the same transaction."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from automation.actions import ActionContext, action_registry
from automation.choices import ExecutionStatus, Trigger
from automation.engine.rules import LoadedRule
from automation.entities import event_values, field_names, is_inbound
from automation.events import chain_context
from automation.models import AutomationEvent, AutomationExecution, IdempotencyRecord
from automation.placeholders import merge_config, names_in, render, variables_for
from config.errors import ApplicationError, Conflict
from config.transitions import lock_many, transition_if
from operations.sanitize import sanitize_message

logger = logging.getLogger(__name__)


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


class BatchWrites:
    """The rows a batch of fresh executions writes, inserted together when the
    batch ends (``flush``) instead of one by one: the executions (their ids
    reserved up front, so actions and the events they cause can point at
    them), alerts with their recipients, and idempotency records — a few
    statements per batch instead of several per event. Foreign keys are
    checked at commit (Django creates them deferrable), so the order of the
    inserts does not matter. Only for a batch that any failure undoes whole
    (the outbox's batch savepoint, redone event by event without it)."""

    def __init__(self, *, reserve: int) -> None:
        self.reserve = max(1, reserve)
        self.executions: list[AutomationExecution] = []
        self.records: list[IdempotencyRecord] = []
        self.alerts: list[tuple[Any, list, dict]] = []
        self._ids: list[int] = []

    @staticmethod
    def possible() -> bool:
        return connection.vendor in ("postgresql", "sqlite")

    def execution_id(self) -> int:
        if not self._ids:
            self._ids = _reserve_ids(AutomationExecution, self.reserve)
        return self._ids.pop(0)

    def add_alert(self, alert, recipients: list, result: dict) -> None:
        self.alerts.append((alert, recipients, result))

    def flush(self) -> None:
        if self.alerts:
            alerts = [alert for alert, _recipients, _result in self.alerts]
            type(alerts[0]).objects.bulk_create(alerts)
            recipients = []
            for alert, rows, result in self.alerts:
                result["alert_id"] = alert.pk
                recipients.extend(rows)
            if recipients:
                type(recipients[0]).objects.bulk_create(recipients)
        AutomationExecution.objects.bulk_create(self.executions)
        IdempotencyRecord.objects.bulk_create(self.records)
        self.executions, self.records, self.alerts = [], [], []


def _reserve_ids(model, count: int) -> list[int]:
    """``count`` primary keys for rows of ``model`` inserted later in this
    transaction: taken from the sequence (PostgreSQL), or by moving SQLite's
    AUTOINCREMENT counter past them (the transaction holds SQLite's write lock
    from its start: IMMEDIATE), so nothing else is given them."""
    table, pk = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, pk, count],
            )
            return [row[0] for row in cursor.fetchall()]
        quoted = connection.ops.quote_name(table)
        cursor.execute(
            f"SELECT (SELECT seq FROM sqlite_sequence WHERE name = %s), "  # noqa: S608 - our table
            f"(SELECT coalesce(max({connection.ops.quote_name(pk)}), 0) FROM {quoted})",
            [table],
        )
        seq, highest = cursor.fetchone()
        start = max(seq or 0, highest) + 1
        if seq is None:
            cursor.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)",
                [table, start + count - 1],
            )
        else:
            cursor.execute(
                "UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [start + count - 1, table]
            )
    return list(range(start, start + count))


def _idempotency_key(execution, rule, action) -> str:
    return f"{execution.pk}:{rule.pk}:{action.pk}"


def action_config(action, rule, target: Target) -> dict:
    merged = merge_config(
        action.template.default_config if action.template else {}, action.action_config
    )
    variables = variables_for(
        field_names=field_names(target.model),
        new=event_values(
            target.model,
            target.new_values if target.new_values is not None else target.old_values,
        ),
        old=target.old_values if target.trigger == Trigger.ON_UPDATE else None,
        rule=rule,
        trigger=target.trigger,
        object_pk=target.object_pk,
        # An inbound source's field names cannot be listed: the config says which it reads.
        used=names_in(merged) if is_inbound(target.model) else frozenset(),
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


def _run_action_list(execution, loaded, target, *, fresh, cache, isolate, writes=None):
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
                writes=writes,
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
    if writes is not None:
        writes.records.extend(records)
    else:
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


def rule_execute(
    loaded: LoadedRule,
    target: Target,
    *,
    event: AutomationEvent | None = None,
    schedule_slot: datetime | None = None,
    skip_reason: str = "",
    rerun: bool = False,
    cache: dict | None = None,
    first_claim: bool = False,
    writes: BatchWrites | None = None,
) -> tuple[AutomationExecution, bool]:
    """Create the rule's execution for this event (or schedule slot and row)
    and run its actions. ``(execution, ran)``: when the pair already has an
    execution, that one is returned untouched (``ran`` False) unless
    ``rerun`` asks to finish a failed or partial one. With ``writes`` (a
    claimed event's first processing), the rows are left to the batch to
    insert, and an action that fails raises: the batch is redone without it."""
    rule = loaded.rule
    started = time.perf_counter()
    if writes is not None and first_claim and not rerun and event is not None:
        return _execute_deferred(loaded, target, event, skip_reason, started, cache, writes)
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


def _execute_deferred(
    loaded: LoadedRule,
    target: Target,
    event: AutomationEvent,
    skip_reason: str,
    started: float,
    cache: dict | None,
    writes: BatchWrites,
) -> tuple[AutomationExecution, bool]:
    """rule_execute for a batch: the execution is built in memory (its id
    reserved) and inserted by ``writes.flush``, with its final state."""
    # Created in its final state, one of the machine's first states (a failure
    # never gets here: it undoes the batch).
    status = ExecutionStatus.SKIPPED if skip_reason else ExecutionStatus.SUCCESS
    execution = AutomationExecution(
        pk=writes.execution_id(),
        rule=loaded.rule,
        rule_version=loaded.rule.version,
        event=event,
        entity_type=target.entity_name,
        object_pk=target.object_pk,
        trigger_data=_trigger_data(target, {"changed_fields": event.changed_fields}),
        status=status,
        error_message=skip_reason,
        depth=target.depth,
    )
    if not skip_reason:
        # isolate=False: a failing action raises _ActionFailed out of the batch.
        _status, details, _error = _run_action_list(
            execution,
            loaded,
            target,
            fresh=True,
            cache=cache if cache is not None else {},
            isolate=False,
            writes=writes,
        )
        execution.actions_executed = details
        execution.execution_time_ms = int((time.perf_counter() - started) * 1000)
    writes.executions.append(execution)
    return execution, not skip_reason


def _existing_execution(rule, *, event, slot, object_pk):
    executions = AutomationExecution.objects.filter(rule=rule)
    if event is not None:
        executions = executions.filter(event=event)
    else:
        executions = executions.filter(schedule_slot=slot, object_pk=object_pk)
    return next(iter(lock_many(executions)), None)


def _finish(execution, loaded, target, started, *, fresh: bool, cache=None) -> AutomationExecution:
    status, details, error = run_actions(execution, loaded, target, fresh=fresh, cache=cache)
    if status in (ExecutionStatus.FAILED, ExecutionStatus.PARTIAL):
        # One line an operator can search for: which execution, and why.
        logger.warning(
            "automation execution %s of rule %s (%s) %s: %s",
            execution.pk,
            loaded.rule.pk,
            target.entity_name,
            status,
            sanitize_message(error, limit=500),
        )
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
