"""Asking Knox what became of the documents in flight, and acting on it: the
scheduled poll (all of them, in chunks asked about from a bounded pool, settled
in batches) and the refresh of one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from approvals.choices import (
    IN_FLIGHT,
    KNOX_APPROVED,
    KNOX_IN_PROGRESS,
    ActionStatus,
    FailureStage,
    KnoxStatus,
)
from approvals.knox import KnoxError, KnoxProtocolError, StatusReport, get_knox_client
from approvals.models import ApprovalLog, PendingAction
from approvals.selectors import pending_action_is_visible, pending_action_pages_in_flight
from approvals.services.access import pending_action_authorize, pending_action_lock
from approvals.services.execute import (
    HandlerFailed,
    pending_action_execute,
    pending_action_run,
)
from config.db import update_by_pks
from config.errors import NotFound
from config.transitions import TransitionBatch, each_or_all, lock_many

logger = logging.getLogger(__name__)

# What a poll writes to the approval log, beside the action's move.
LOG_FIELDS = (
    "knox_status",
    "last_checked_at",
    "last_knox_response",
    "submitted_at",
    "decided_at",
    "delegate_ep_id",
)

# In-flight documents read per query (a keyset page).
IN_FLIGHT_PAGE = 1000

# Changed documents settled per transaction.
SETTLE_BATCH = 100

# Unchanged documents whose last check is written per UPDATE.
TOUCH_BATCH = 5000  # one array parameter on PostgreSQL (config.db.update_by_pks)

# Status calls failing one after another before the cycle stops asking.
GIVE_UP_AFTER_FAILED_CALLS = 10

COUNT_KEYS = ("checked", "updated", "executed", "rejected", "cancelled", "failed")


def pending_actions_poll(*, tracker=None) -> dict[str, int]:
    """One poll cycle: ask Knox about every in-flight document, a chunk of
    ``KNOX_STATUS_BATCH_SIZE`` per call and ``KNOX_POLL_CONCURRENCY`` calls at
    a time, act on what changed, execute what is approved. The documents are
    read a page at a time and settled here, on the calling thread, while the
    next chunks are asked about. One bad item, or one failed call, never stops
    the cycle; calls that keep failing do (Knox is down: the next cycle tries)."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    now = timezone.now()
    client = get_knox_client()
    # A submit still under way has not heard from Knox yet: don't race it.
    pages = pending_action_pages_in_flight(
        created_before=now - timedelta(seconds=settings.KNOX_SUBMIT_GRACE_SECONDS),
        size=IN_FLIGHT_PAGE,
        stamped_before=now - timedelta(seconds=settings.KNOX_CHECK_STAMP_SECONDS),
    )
    rows_by_id: dict[str, object] = {}

    def chunks():
        size = client.config.batch_size
        for page in pages:
            for start in range(0, len(page), size):
                chunk = page[start : start + size]
                rows_by_id.update((row.ap_inf_id, row) for row in chunk)
                yield [row.ap_inf_id for row in chunk]

    unchanged: list[int] = []  # their approval logs' keys
    changed: list[_Changed] = []
    failed_in_a_row = 0
    with closing(client.statuses_each(chunks())) as answers:
        for chunk, reports in answers:
            rows = [rows_by_id.pop(ap_inf_id) for ap_inf_id in chunk]
            if isinstance(reports, KnoxError):
                # This chunk is blind this cycle: record it, and the next one asks again.
                _record_failure(
                    tracker, counts, reports.code, f"Status request failed: {reports.message}"
                )
                failed_in_a_row += 1
                if failed_in_a_row >= GIVE_UP_AFTER_FAILED_CALLS:
                    logger.warning(
                        "approvals: %s status calls in a row failed; the poll stops here",
                        failed_in_a_row,
                    )
                    break
                continue
            failed_in_a_row = 0
            _sort(rows, reports, counts, tracker, unchanged=unchanged, changed=changed)
            while len(changed) >= SETTLE_BATCH:
                _settle_batch(changed[:SETTLE_BATCH], counts, tracker)
                del changed[:SETTLE_BATCH]
            while len(unchanged) >= TOUCH_BATCH:
                _touch(unchanged[:TOUCH_BATCH], now)
                del unchanged[:TOUCH_BATCH]
    if changed:
        _settle_batch(changed, counts, tracker)
    if unchanged:
        _touch(unchanged, now)
    return counts


def _sort(rows, reports, counts, tracker, *, unchanged: list[int], changed: list) -> None:
    """Sort Knox's answers on a chunk: unreadable (a failure), unchanged, or changed."""
    for row in rows:
        counts["checked"] += 1
        report = reports[row.ap_inf_id]
        if report.error is not None:
            _record_failure(
                tracker,
                counts,
                report.error.code,
                f"Pending action {row.pk}: {report.error.message}",
                row.ap_inf_id,
            )
        elif (
            report.found and report.status == row.knox_status and row.status == ActionStatus.PENDING
        ):
            if row.stamp_due:
                unchanged.append(row.approval_log_id)
        else:
            changed.append(_Changed(row.pk, row.ap_inf_id, report, submitted=row.submitted))


def _touch(approval_log_ids: list[int], now) -> None:
    """Unchanged documents whose last check was stamped more than
    ``KNOX_CHECK_STAMP_SECONDS`` ago (or never): one UPDATE for many, not a
    query each (no state moves). A stamp younger than that is left alone, so a
    poll of 100,000 unchanged documents does not rewrite 100,000 rows a minute;
    an unchanged document's ``last_checked_at`` is right to within that many
    seconds, and a stamp older than it says the document is not being polled."""
    update_by_pks(ApprovalLog, approval_log_ids, last_checked_at=now)


@dataclass(frozen=True)
class _Changed:
    """A document whose Knox answer differs from what we know."""

    pk: int
    ap_inf_id: str
    report: StatusReport
    submitted: bool


def _settle_batch(batch: list[_Changed], counts, tracker) -> None:
    """Settle changed documents together; if anything in the batch goes wrong,
    settle them one by one, so one bad item never holds up the others."""

    def failed(item: _Changed, error: Exception) -> None:
        logger.error(
            "approvals: pending action %s failed during the poll",
            item.pk,
            exc_info=error,
            extra={"pending_action_id": item.pk},
        )
        _record_failure(
            tracker,
            counts,
            _code(error),
            f"Pending action {item.pk}: {_message(error)}",
            item.ap_inf_id,
        )

    # A handler that failed in the batch: its error, recorded when its
    # document is settled alone, rather than running the handler again.
    handler_failed: dict[int, Exception] = {}
    results = each_or_all(
        batch,
        together=lambda items: _settle_together(items, handler_failed),
        alone=lambda item: (
            item,
            *_settle_one(
                pending_action_id=item.pk,
                report=item.report,
                submitted=item.submitted,
                failed_with=handler_failed.get(item.pk),
            ),
        ),
        failed=failed,
        what="Knox document",
    )
    for item, outcome, action in results:
        if outcome is None:
            continue  # settled by someone else since we read it
        counts["updated"] += 1
        if outcome in ("executed", "rejected", "cancelled"):
            counts[outcome] += 1
        elif outcome == "execution_failed":
            _record_failure(
                tracker,
                counts,
                action.failure_code or "approvals.handler_failed",
                f"Pending action {item.pk}: {action.error_message}",
                item.ap_inf_id,
            )
        elif outcome == "submit_failed":
            _record_failure(
                tracker,
                counts,
                "approvals.submit_lost",
                f"Pending action {item.pk}: {action.error_message}",
                item.ap_inf_id,
            )


def _code(error: BaseException) -> str:
    return getattr(error, "code", None) or f"approvals.{type(error).__name__.lower()}"


def _message(error: BaseException) -> str:
    return getattr(error, "message", None) or f"{type(error).__name__}: {error}"


def _record_failure(tracker, counts, code: str, message: str, ap_inf_id: str | None = None) -> None:
    counts["failed"] += 1
    if tracker is not None:
        tracker.add_failure(code, message)
        if ap_inf_id:
            items = tracker.context.setdefault("failed_ap_inf_ids", [])
            if len(items) < 50:
                items.append(ap_inf_id)


def _settle(
    batch: TransitionBatch,
    action: PendingAction,
    report: StatusReport,
    *,
    now,
    submitted: bool,
    actor=None,
    isolated: bool = True,
    failed_with: Exception | None = None,
) -> str | None:
    """Apply what Knox said to a locked action, in ``batch`` (written when the
    batch ends): an approval runs the handler right there, in the same
    transaction (a crash rolls it all back, and the next poll sees the approval
    again). Returns "executed", "execution_failed", "rejected", "cancelled",
    "submit_failed", "updated", or None when someone else settled it meanwhile.
    ``isolated`` and ``failed_with`` go to ``pending_action_run``."""
    if report.error is not None:
        raise report.error
    if action.status not in IN_FLIGHT:
        return None
    if not report.found:
        if action.status == ActionStatus.SUBMIT_UNKNOWN or not submitted:
            reason = "Knox has no record of the document: the submit never arrived. Resubmit it."
            batch.move(
                action,
                ActionStatus.FAILED,
                actor=actor,
                reason=reason,
                failure_stage=FailureStage.SUBMIT,
                failure_code="approvals.submit_lost",
                error_message=reason,
            )
            return "submit_failed"
        raise KnoxProtocolError(
            "Knox no longer knows a document it accepted.", code="knox.not_found"
        )
    status = report.status
    log = action.approval_log
    log.knox_status = status
    log.last_checked_at = now
    log.last_knox_response = report.raw
    log.submitted_at = log.submitted_at or now
    if status not in KNOX_IN_PROGRESS:
        log.decided_at = now
    if status == KnoxStatus.DELEGATED_FINAL:
        log.delegate_ep_id = report.delegate_ep_id or ""
    batch.save_fields(log, *LOG_FIELDS)
    opinion = str((report.raw or {}).get("opinion") or "")
    if status in KNOX_APPROVED:
        by = (
            f", by delegation to {report.delegate_ep_id}"
            if status == KnoxStatus.DELEGATED_FINAL and report.delegate_ep_id
            else ""
        )
        batch.move(
            action,
            ActionStatus.APPROVED,
            actor=actor,
            reason=f"Knox status {int(status)} ({status.label}){by}",
        )
        pending_action_run(
            batch=batch,
            pending_action=action,
            actor=actor,
            isolated=isolated,
            failed_with=failed_with,
        )
        return "executed" if action.status == ActionStatus.EXECUTED else "execution_failed"
    if status == KnoxStatus.REJECTED:
        batch.move(action, ActionStatus.REJECTED, actor=actor, reason=opinion or "rejected in Knox")
        return "rejected"
    if status == KnoxStatus.WITHDRAWN:
        batch.move(
            action, ActionStatus.CANCELLED, actor=actor, reason=opinion or "withdrawn in Knox"
        )
        return "cancelled"
    if action.status == ActionStatus.SUBMIT_UNKNOWN:
        batch.move(action, ActionStatus.PENDING, actor=actor, reason="Knox has the document")
    return "updated"


def pending_action_settle(
    *, pending_action_id: int, report: StatusReport, submitted: bool, actor=None
) -> tuple[str | None, PendingAction]:
    """Settle one document with what Knox said about it, in its own transaction:
    ``(outcome, action)`` as ``_settle`` says them."""
    return _settle_one(
        pending_action_id=pending_action_id, report=report, submitted=submitted, actor=actor
    )


def _settle_one(
    *,
    pending_action_id: int,
    report: StatusReport,
    submitted: bool,
    actor=None,
    failed_with: Exception | None = None,
) -> tuple[str | None, PendingAction]:
    if report.error is not None:
        raise report.error
    with transaction.atomic(), TransitionBatch() as batch:
        action = pending_action_lock(pk=pending_action_id)
        outcome = _settle(
            batch,
            action,
            report,
            now=timezone.now(),
            submitted=submitted,
            actor=actor,
            failed_with=failed_with,
        )
    return outcome, action


def _settle_together(
    items: Sequence[_Changed], handler_failed: dict[int, Exception]
) -> list[tuple[_Changed, str | None, PendingAction]]:
    """Settle a batch of documents in the caller's transaction: the rows locked
    in primary-key order, written with one statement per table, the handlers
    run without a savepoint each. Any error raises (a handler's is noted in
    ``handler_failed``); ``each_or_all`` then settles them one by one."""
    # The requesters come with the lock (only the actions' rows are locked):
    # running a handler asks whether its requester still may, without a query each.
    locked = lock_many(
        PendingAction.objects.select_related("approval_log", "created_by"),
        [item.pk for item in items],
    )
    actions = {action.pk: action for action in locked}
    now = timezone.now()
    results = []
    with TransitionBatch() as batch:
        for item in items:
            action = actions.get(item.pk)
            if action is not None:
                try:
                    outcome = _settle(
                        batch,
                        action,
                        item.report,
                        now=now,
                        submitted=item.submitted,
                        isolated=False,
                    )
                except HandlerFailed as failure:
                    handler_failed[item.pk] = failure.error
                    raise
                results.append((item, outcome, action))
    return results


def pending_action_refresh(*, ap_inf_id: str, actor=None) -> PendingAction:
    """Ask Knox about one document now (the "refresh" button), and act on it.
    The requester may for their own; anyone else needs the operate permission."""
    action = (
        PendingAction.objects.select_related("approval_log").filter(ap_inf_id=ap_inf_id).first()
    )
    if action is None or (
        actor is not None and not pending_action_is_visible(user=actor, pending_action=action)
    ):
        raise NotFound(f"No pending action with apInfId {ap_inf_id}.", code="approvals.not_found")
    pending_action_authorize(
        pending_action=action, actor=actor, doing="check the status of", own=True
    )
    submitting = (
        action.status == ActionStatus.PENDING
        and action.approval_log.submitted_at is None
        and action.created_at
        > timezone.now() - timedelta(seconds=settings.KNOX_SUBMIT_GRACE_SECONDS)
    )
    if (
        action.status in IN_FLIGHT and not submitting
    ):  # a submit under way has not been answered yet
        report = get_knox_client().statuses([ap_inf_id])[ap_inf_id]
        pending_action_settle(
            pending_action_id=action.pk,
            report=report,
            submitted=action.approval_log.submitted_at is not None,
            actor=actor,
        )
    elif action.status == ActionStatus.APPROVED:
        pending_action_execute(ap_inf_id=ap_inf_id, actor=actor)
    action.refresh_from_db()
    return action
