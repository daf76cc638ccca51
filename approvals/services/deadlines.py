"""Decision deadlines (issue 13): reminders before an action's deadline, and
what happens when it passes undecided.

- A request's due time (``due_at``, indexed) and reminder rows are written
  with the pending action (``requests.py``), from its template's
  ``decision_deadline`` / ``reminders_before``, or the request's own deadline.
- The sweep (every minute, an ``approvals.sweep_deadlines`` run in the
  ledger) works in bounded batches, each its own transaction, rows taken
  with ``SKIP LOCKED`` so two sweeps never take the same one:
  1. due reminders: notifications to the requester and the template's
     reminder recipients, written in the same transaction that marks the
     reminder sent (a rerun or a second sweep finds it sent: nothing twice);
  2. deadlines passed, policy ``withdraw``: the action moves to ``expired``
     (audited like every move), then
  3. the document is withdrawn at Knox: saga order, our database first,
     Knox second. A Knox failure is recorded on the action
     (``knox_withdraw_error``, attempts) and the next sweep tries again,
     until Knox confirms the document is closed;
  4. deadlines passed, policy ``escalate``: an alert to the template's
     escalation recipients (automation's alerts), once; the action stays
     pending, still waiting for Knox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from approvals.choices import (
    IN_FLIGHT,
    KNOX_IN_PROGRESS,
    ActionStatus,
    DeadlinePolicy,
    KnoxStatus,
)
from approvals.deadlines import (
    format_duration,
    parse_duration,
    reminder_problems,
    split_channels,
)
from approvals.knox import KnoxError, KnoxRejected, get_knox_client
from approvals.models import ApprovalTemplate, PendingAction, PendingActionReminder
from approvals.services.access import pending_action_authorize, pending_action_lock
from automation.services.notify import alert_raise, notification_recipients, notifications_create
from config.errors import error_text
from config.transitions import TransitionBatch, lock_many, transition
from operations.sanitize import sanitize_message

logger = logging.getLogger(__name__)

# Rows per transaction, and transactions per kind of work in one sweep: a
# sweep is bounded; what is left waits a minute for the next one.
SWEEP_BATCH = 100
MAX_BATCHES = 20
# Knox calls failing one after another before the sweep stops withdrawing
# (Knox is down: the next sweep tries again).
GIVE_UP_AFTER_FAILED_CALLS = 5

COUNT_KEYS = (
    "reminders_sent",
    "notifications",
    "expired",
    "withdrawn",
    "withdraw_failed",
    "escalated",
    "failed",
)


@dataclass(frozen=True)
class DeadlinePlan:
    """What a request's deadline will be: how long Knox has, the reminder
    offsets before it (soonest first), and the policy. ``due_in`` None: none."""

    due_in: timedelta | None = None
    reminders: tuple[timedelta, ...] = ()
    policy: str = ""


def deadline_plan(
    *, template: ApprovalTemplate, deadline: str | timedelta | None
) -> tuple[DeadlinePlan, dict[str, list[str]]]:
    """The plan for a request on ``template`` with its own ``deadline`` (or
    the template's), and the problems by field (``deadline`` for the
    request's own, ``template_name`` for a template saved broken)."""
    if deadline in (None, ""):
        if not template.decision_deadline:
            return DeadlinePlan(), {}
        field, given = "template_name", template.decision_deadline
    else:
        field, given = "deadline", deadline
    try:
        due_in = given if isinstance(given, timedelta) else parse_duration(given, what="Deadline")
    except ValueError as error:
        return DeadlinePlan(), {field: [str(error)]}
    if due_in <= timedelta(0):
        return DeadlinePlan(), {field: ["A deadline must be after the request."]}
    offsets, problems = reminder_problems(template.reminders_before, deadline=due_in)
    if problems:
        prefix = (
            f"The template {template.name!r}'s reminders ({template.reminders_before}) do not "
            "fit this deadline: "
            if field == "deadline"
            else f"The template {template.name!r} cannot be used until it is fixed: "
        )
        return DeadlinePlan(), {field: [prefix + " ".join(problems)]}
    policy = template.deadline_policy or DeadlinePolicy.WITHDRAW
    return DeadlinePlan(due_in=due_in, reminders=tuple(offsets), policy=policy), {}


def deadline_rows(
    *, pending_action: PendingAction, plan: DeadlinePlan, now: datetime
) -> list[PendingActionReminder]:
    """Set the action's due time and policy (the caller saves it) and return
    its reminder rows (the caller writes them)."""
    if plan.due_in is None:
        return []
    pending_action.due_at = now + plan.due_in
    pending_action.deadline_policy = plan.policy
    return [
        PendingActionReminder(
            pending_action=pending_action,
            before_deadline=offset,
            remind_at=pending_action.due_at - offset,
        )
        for offset in plan.reminders
    ]


# --- one action --------------------------------------------------------------------------


def pending_action_expire(*, pending_action_id: int, actor=None, reason: str = "") -> PendingAction:
    """Expire one in-flight action now (``expired``, audited), then withdraw
    its document at Knox; a Knox failure is recorded and the sweep retries
    it. Needs the operate permission (``actor`` None is the system). An
    action Knox already decided (approved, executed, rejected…) is refused
    with its current state (409) and nothing changes."""
    with transaction.atomic():
        action = pending_action_lock(pk=pending_action_id)
        pending_action_authorize(pending_action=action, actor=actor, doing="expire", own=False)
        if action.status not in IN_FLIGHT:
            raise action.state_machine.refuse(
                action, ActionStatus.EXPIRED, code="approvals.not_expirable"
            )
        transition(
            action, ActionStatus.EXPIRED, actor=actor, reason=reason or _expiry_reason(action)
        )
    pending_action_withdraw_expired(pending_action_id=action.pk)
    action.refresh_from_db()
    return action


def _expiry_reason(action: PendingAction) -> str:
    if action.due_at is None:
        return "expired by hand"
    return f"Knox did not decide by the deadline ({action.due_at:%Y-%m-%d %H:%M %Z})"


def pending_action_withdraw_expired(*, pending_action_id: int) -> str:
    """Withdraw an expired action's document at Knox and record what Knox
    said: ``"withdrawn"`` (or Knox had already closed it: decided before the
    withdrawal arrived, or never received), ``"failed"`` (recorded; the next
    sweep tries again), or ``"skipped"`` (not expired, or already done)."""
    action = PendingAction.objects.filter(pk=pending_action_id).first()
    if action is None or action.status != ActionStatus.EXPIRED or action.knox_withdrawn_at:
        return "skipped"
    client = get_knox_client()
    note, status, answer = "", None, None
    try:
        answer = client.withdraw(
            ap_inf_id=action.ap_inf_id, reason="The decision deadline passed in Bureau."
        )
        status = KnoxStatus.WITHDRAWN
    except KnoxRejected as refused:
        # Knox said no: it may have decided (or lost) the document before our
        # withdrawal reached it. Ask, rather than retry for ever.
        try:
            report = client.statuses([action.ap_inf_id])[action.ap_inf_id]
        except KnoxError as error:
            return _withdraw_failed(action.pk, error.message)
        if report.error is not None or (report.found and report.status in KNOX_IN_PROGRESS):
            return _withdraw_failed(action.pk, refused.message)
        if report.found:
            status, answer = report.status, report.raw
            if status != KnoxStatus.WITHDRAWN:  # withdrawn already: by an earlier attempt
                note = (
                    "Knox had already decided before the withdrawal: "
                    f"status {int(status)} ({status.label})."
                )
        else:
            note = "Knox has no record of the document: nothing to withdraw."
    except KnoxError as error:
        return _withdraw_failed(action.pk, error.message)
    with transaction.atomic(), TransitionBatch() as batch:
        locked = pending_action_lock(pk=action.pk)
        if locked.knox_withdrawn_at is not None:
            return "skipped"
        now = timezone.now()
        locked.knox_withdrawn_at = now
        locked.knox_withdraw_attempts += 1
        locked.knox_withdraw_error = note
        locked.save(
            update_fields=[
                "knox_withdrawn_at",
                "knox_withdraw_attempts",
                "knox_withdraw_error",
                "updated_at",
            ]
        )
        if status is not None:
            log = locked.approval_log
            log.knox_status = status
            log.decided_at = log.decided_at or now
            log.last_checked_at = now
            log.last_knox_response = answer
            batch.save_fields(
                log, "knox_status", "decided_at", "last_checked_at", "last_knox_response"
            )
    return "withdrawn"


def _withdraw_failed(pending_action_id: int, message: str) -> str:
    with transaction.atomic():
        locked = pending_action_lock(pk=pending_action_id)
        locked.knox_withdraw_attempts += 1
        locked.knox_withdraw_error = sanitize_message(message)
        locked.save(update_fields=["knox_withdraw_attempts", "knox_withdraw_error", "updated_at"])
    return "failed"


# --- the sweep ---------------------------------------------------------------------------


def pending_action_deadlines_sweep(
    *,
    now: datetime | None = None,
    tracker=None,
    batch_size: int = SWEEP_BATCH,
    max_batches: int = MAX_BATCHES,
) -> dict[str, int]:
    """Send due reminders, expire or escalate what passed its deadline, and
    withdraw expired documents at Knox (again, for earlier failures). Counts
    per kind; a failure is recorded on ``tracker`` and never stops the rest."""
    now = now or timezone.now()
    counts = dict.fromkeys(COUNT_KEYS, 0)
    sweep = _Sweep(now=now, counts=counts, tracker=tracker, batch_size=batch_size)
    for step in (sweep.reminders, sweep.expire, sweep.escalate):
        for _ in range(max_batches):
            if step() < batch_size:
                break
    sweep.withdraw(limit=batch_size * max_batches)
    return counts


@dataclass
class _Sweep:
    now: datetime
    counts: dict[str, int]
    tracker: object
    batch_size: int

    def fail(self, code: str, message: str) -> None:
        self.counts["failed"] += 1
        if self.tracker is not None:
            self.tracker.add_failure(code, message)

    def reminders(self) -> int:
        """One batch of due reminders, sent and marked in one transaction."""
        due = PendingActionReminder.objects.filter(
            sent_at__isnull=True,
            remind_at__lte=self.now,
            pending_action__status__in=IN_FLIGHT,
            pending_action__due_at__gt=self.now,
        ).select_related(
            "pending_action__template",
            "pending_action__created_by",
            "pending_action__approval_log",
        )
        with transaction.atomic():
            batch = lock_many(due, skip_locked=True, limit=self.batch_size)
            for reminder in batch:
                self._remind(reminder)
        return len(batch)

    def _remind(self, reminder: PendingActionReminder) -> None:
        action = reminder.pending_action
        template = action.template
        requester = [action.created_by] if action.created_by is not None else []
        try:
            users = notification_recipients(
                recipients=template.reminder_recipients if template else None, users=requester
            )
        except ValidationError as error:  # a recipient removed since the template was saved
            self.fail(
                "approvals.reminder_recipients",
                f"Pending action {action.pk}: reminder recipients: {error_text(error, sep='; ')}; "
                "reminded the requester only.",
            )
            users = notification_recipients(recipients=None, users=requester)
        channels = split_channels(template.reminder_channels if template else "") or ["in_app"]
        left = format_duration(reminder.before_deadline)
        what = (
            "it expires and is withdrawn from Knox"
            if action.deadline_policy == DeadlinePolicy.WITHDRAW
            else "it is escalated"
        )
        ids = notifications_create(
            users=users,
            channels=channels,
            subject=f"Approval due in {left}: {action.approval_log.subject}"[:300],
            message=(
                f"Knox has not decided {action.approval_log.subject!r} (pending action "
                f"{action.pk}, {action.ap_inf_id}) yet. It is due by "
                f"{timezone.localtime(action.due_at):%Y-%m-%d %H:%M %Z}; if it is still "
                f"undecided then, {what}."
            ),
            data={"pending_action_id": str(action.pk), "ap_inf_id": action.ap_inf_id},
        )
        reminder.sent_at = self.now
        reminder.delivery_ids = ids
        reminder.recipients = [user.get_username() for user in users]
        reminder.save(update_fields=["sent_at", "delivery_ids", "recipients"])
        self.counts["reminders_sent"] += 1
        self.counts["notifications"] += len(ids)

    def expire(self) -> int:
        """One batch of actions past their deadline with the withdraw policy:
        moved to expired together (the Knox half is ``withdraw``)."""
        due = PendingAction.objects.filter(
            status__in=IN_FLIGHT, due_at__lte=self.now, deadline_policy=DeadlinePolicy.WITHDRAW
        )
        with transaction.atomic(), TransitionBatch() as batch:
            actions = lock_many(due, skip_locked=True, limit=self.batch_size)
            for action in actions:
                batch.move(action, ActionStatus.EXPIRED, reason=_expiry_reason(action))
        self.counts["expired"] += len(actions)
        return len(actions)

    def escalate(self) -> int:
        """One batch of actions past their deadline with the escalate policy:
        an alert each, once (``escalated_at`` set in the same transaction)."""
        due = PendingAction.objects.filter(
            status__in=IN_FLIGHT,
            due_at__lte=self.now,
            deadline_policy=DeadlinePolicy.ESCALATE,
            escalated_at__isnull=True,
        ).select_related("template", "approval_log", "created_by")
        with transaction.atomic():
            actions = lock_many(due, skip_locked=True, limit=self.batch_size)
            for action in actions:
                self._escalate(action)
        return len(actions)

    def _escalate(self, action: PendingAction) -> None:
        template = action.template
        requester = action.created_by.get_username() if action.created_by else "(deleted user)"
        try:
            with transaction.atomic():
                alert = alert_raise(
                    alert_type="approvals.deadline_passed",
                    title=f"Approval overdue: {action.approval_log.subject}",
                    message=(
                        f"Knox has not decided {action.approval_log.subject!r} (pending action "
                        f"{action.pk}, {action.ap_inf_id}, requested by {requester}); it was due "
                        f"by {timezone.localtime(action.due_at):%Y-%m-%d %H:%M %Z}. The action "
                        "stays pending until Knox decides or someone withdraws it."
                    ),
                    recipients=template.escalation_recipients if template else {},
                    context={"pending_action_id": action.pk, "ap_inf_id": action.ap_inf_id},
                    source_entity_name="approvals_pendingaction",
                    source_entity_id=str(action.pk),
                )
        except ValidationError as error:
            # Nobody to alert (the template or its group is gone): recorded in
            # the ledger once, not again every minute.
            self.fail(
                "approvals.escalation_undeliverable",
                f"Pending action {action.pk}: no escalation alert: {error_text(error, sep='; ')}",
            )
            alert = None
        action.escalated_at = self.now
        action.escalation_alert_id = alert.pk if alert else None
        action.save(update_fields=["escalated_at", "escalation_alert_id", "updated_at"])
        self.counts["escalated"] += 1 if alert else 0

    def withdraw(self, *, limit: int) -> None:
        """Expired documents not yet closed at Knox, oldest first."""
        ids = list(
            PendingAction.objects.filter(
                status=ActionStatus.EXPIRED, knox_withdrawn_at__isnull=True
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        failed_in_a_row = 0
        for pending_action_id in ids:
            outcome = pending_action_withdraw_expired(pending_action_id=pending_action_id)
            if outcome == "withdrawn":
                self.counts["withdrawn"] += 1
                failed_in_a_row = 0
            elif outcome == "failed":
                self.counts["withdraw_failed"] += 1
                error = (
                    PendingAction.objects.filter(pk=pending_action_id)
                    .values_list("knox_withdraw_error", flat=True)
                    .first()
                )
                self.fail(
                    "approvals.withdraw_failed",
                    f"Pending action {pending_action_id}: the withdrawal at Knox failed "
                    f"(tried again next sweep): {error}",
                )
                failed_in_a_row += 1
                if failed_in_a_row >= GIVE_UP_AFTER_FAILED_CALLS:
                    logger.warning(
                        "approvals: %s withdrawals in a row failed; the sweep stops here",
                        failed_in_a_row,
                    )
                    return
