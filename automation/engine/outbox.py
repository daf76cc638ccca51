"""The outbox worker: events become rule executions.

The outbox is drained in batches. A batch is one transaction: its events are
taken with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite has one
writer at a time anyway), every (event, rule) pair becomes an execution whose
row is unique per pair, and the events are marked processed before the
commit. A worker that dies mid-batch rolls the whole batch back: its events
are pending again and nothing it did is half-kept. The batch's events run in
one savepoint and, should one raise, again one savepoint each
(``each_or_all``), so one broken event cannot block the batch; an action that
fails leaves no trace but its error (engine.execution).
"""

from __future__ import annotations

import logging
from collections import Counter

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from automation import conf
from automation.choices import EventStatus, ExecutionStatus, Trigger
from automation.conditions import evaluate
from automation.engine.execution import BatchWrites, Target, rule_execute
from automation.engine.rules import LoadedRule, RuleBook, dependency_order
from automation.entities import event_values, field_key_for, resolve_entity
from automation.models import AutomationEvent
from automation.permissions import REPLAY_EVENT, require
from config.errors import NotFound
from config.transitions import each_or_all, lock, lock_many, transition_if, transition_many_if
from operations.sanitize import sanitize_message

logger = logging.getLogger(__name__)


def _chain_path(event: AutomationEvent, limit: int = 20) -> str:
    names = []
    execution = event.caused_by
    while execution is not None and len(names) < limit:
        names.append(f"{execution.rule.name!r} (execution {execution.pk})")
        parent_event = execution.event
        execution = parent_event.caused_by if parent_event else None
    return " ← ".join(names) if names else "(unknown)"


def event_target(event: AutomationEvent) -> Target:
    return Target(
        model=resolve_entity(event.entity.model_label),
        entity_name=event.entity.name,
        object_pk=event.object_pk,
        trigger=event.trigger,
        new_values=event.new_values,
        old_values=event.old_values,
        depth=event.depth,
    )


def event_matched_rules(book: RuleBook, event: AutomationEvent, target: Target) -> list[LoadedRule]:
    key = field_key_for(target.model)
    old = event.old_values if event.trigger == Trigger.ON_UPDATE else None
    values = event_values(
        target.model, event.new_values if event.new_values is not None else event.old_values
    )
    return [
        loaded
        for loaded in book.rules_for(event.entity_id, event.trigger)
        if evaluate(loaded.rule.trigger_conditions, new=values, old=old, field_key=key)[0]
    ]


def event_run(
    event: AutomationEvent,
    book: RuleBook,
    counts: Counter,
    *,
    rerun: bool = False,
    claimed: bool = False,
    writes: BatchWrites | None = None,
) -> None:
    """Run the rules ``event`` matches. ``claimed``: the caller holds the
    event's row lock from the outbox claim; ``writes``: the batch inserts the
    rows (engine.execution.BatchWrites)."""
    target = event_target(event)
    matched = {loaded.rule.pk: loaded for loaded in event_matched_rules(book, event, target)}
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
        execution, ran = rule_execute(
            loaded,
            target,
            event=event,
            skip_reason=reason,
            rerun=rerun,
            cache=book.cache,
            first_claim=claimed and event.attempts == 0,
            writes=writes,
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


def _run_one(
    event: AutomationEvent, book: RuleBook, writes: BatchWrites | None = None
) -> tuple[AutomationEvent, Counter]:
    counts: Counter = Counter()
    event_run(event, book, counts, claimed=True, writes=writes)
    counts["events"] += 1
    return event, counts


def _run_events(events: list[AutomationEvent], counts: Counter) -> list[AutomationEvent]:
    """Run the claimed events: all of them in one savepoint, and should any
    raise, again one savepoint per event, so the broken one is recorded and
    the others still go through (a savepoint per event on the common path
    costs the worker a fifth of its throughput). The events that ran."""

    def together(batch: list[AutomationEvent]) -> list[tuple[AutomationEvent, Counter]]:
        book = RuleBook()
        # The batch's executions, alerts and idempotency records are inserted
        # together at its end; any failure undoes the lot, and each_or_all
        # redoes the events one by one, writing as they go.
        writes = BatchWrites(reserve=len(batch)) if BatchWrites.possible() else None
        done = [_run_one(event, book, writes) for event in batch]
        if writes is not None:
            writes.flush()
        return done

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


def outbox_process_batch(*, batch_size: int | None = None, counts: Counter | None = None) -> int:
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
        done, now = _run_events(events, counts), timezone.now()
        # One UPDATE for the batch; an event with a note (the chain guard's
        # reason, or an earlier attempt's error) keeps it, written on its own.
        transition_many_if(
            [e for e in done if not e.note],
            EventStatus.PROCESSED,
            processed_at=now,
            attempts=F("attempts") + 1,
        )
        for event in (e for e in done if e.note):
            transition_if(
                event,
                EventStatus.PROCESSED,
                processed_at=now,
                attempts=event.attempts + 1,
                note=event.note,
            )
    return len(events)


def outbox_process(
    *, max_batches: int | None = None, batch_size: int | None = None
) -> dict[str, int]:
    """Drain pending events, a batch per transaction, until none are left or
    ``max_batches`` were done."""
    counts: Counter = Counter()
    for _ in range(max_batches or conf.outbox_max_batches()):
        if not outbox_process_batch(batch_size=batch_size, counts=counts):
            break
    return dict(counts)


def outbox_helpers_needed() -> int:
    """How many more drain tasks the pending backlog calls for: one per batch
    waiting beyond the first, up to AUTOMATION_OUTBOX_DRAINERS in all. One
    bounded count (it stops at that many batches' worth of events)."""
    batch, drainers = conf.outbox_batch_size(), conf.outbox_drainers()
    if drainers < 2:
        return 0
    waiting = (
        AutomationEvent.objects.filter(status=EventStatus.PENDING)
        .values("pk")[: batch * drainers]
        .count()
    )
    return min(-(-waiting // batch), drainers) - 1


def event_replay(event_id: int, *, actor=None) -> dict[str, int]:
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
        event_run(event, RuleBook(), counts, rerun=True)
        transition_if(
            event,
            EventStatus.PROCESSED,
            processed_at=timezone.now(),
            attempts=event.attempts + 1,
            note=event.note,
        )
    return dict(counts)
