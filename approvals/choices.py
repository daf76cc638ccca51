from django.db import models

from config.transitions import StateMachine


class KnoxStatus(models.IntegerChoices):
    """Knox document status codes (aplnStatsCode)."""

    ENCRYPTING = -2, "Encrypting"
    RESERVED = -1, "Reserved submit"
    HELD = 0, "Held"
    IN_PROGRESS = 1, "In progress"
    COMPLETE = 2, "Complete"
    REJECTED = 3, "Rejected"
    WITHDRAWN = 4, "Withdrawn"
    DELEGATED_FINAL = 5, "Complete (delegated, 전결)"
    POST_COMPLETE = 6, "Complete (post-complete, 후완결)"


KNOX_IN_PROGRESS = frozenset(
    {KnoxStatus.ENCRYPTING, KnoxStatus.RESERVED, KnoxStatus.HELD, KnoxStatus.IN_PROGRESS}
)
KNOX_APPROVED = frozenset(
    {KnoxStatus.COMPLETE, KnoxStatus.DELEGATED_FINAL, KnoxStatus.POST_COMPLETE}
)


def knox_decision_label(status: int | None) -> str:
    """Knox's status in words, as API and console show it: status 5 (전결)
    is "approved by delegation"; blank before Knox has answered."""
    if status is None:
        return ""
    if status == KnoxStatus.DELEGATED_FINAL:
        return "approved by delegation"
    if status in KNOX_APPROVED:
        return "approved"
    try:
        return KnoxStatus(status).label.lower()
    except ValueError:
        return str(status)


class ActionStatus(models.TextChoices):
    PENDING = "pending", "Pending approval"
    SUBMIT_UNKNOWN = "submit_unknown", "Submit outcome unknown"
    APPROVED = "approved", "Approved"
    EXECUTING = "executing", "Executing"
    EXECUTED = "executed", "Executed"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    # Knox did not decide before the decision deadline (issue 13): the document
    # is withdrawn at Knox after this move, and the action never runs.
    EXPIRED = "expired", "Expired (deadline passed)"


# Documents the poller asks Knox about.
IN_FLIGHT = (ActionStatus.PENDING, ActionStatus.SUBMIT_UNKNOWN)
TERMINAL = (
    ActionStatus.EXECUTED,
    ActionStatus.REJECTED,
    ActionStatus.CANCELLED,
    ActionStatus.EXPIRED,
)

# Every allowed move; anything else is an InvalidTransition. Each move writes a
# PendingActionTransition row (config/transitions.py).
PENDING_ACTION_STATES = StateMachine(
    {
        None: {ActionStatus.PENDING},
        ActionStatus.PENDING: {
            ActionStatus.SUBMIT_UNKNOWN,
            ActionStatus.APPROVED,
            ActionStatus.REJECTED,
            ActionStatus.CANCELLED,
            ActionStatus.FAILED,
            ActionStatus.EXPIRED,
        },
        ActionStatus.SUBMIT_UNKNOWN: {
            ActionStatus.PENDING,
            ActionStatus.APPROVED,
            ActionStatus.REJECTED,
            ActionStatus.CANCELLED,
            ActionStatus.FAILED,
            ActionStatus.EXPIRED,
        },
        ActionStatus.APPROVED: {ActionStatus.EXECUTING},
        ActionStatus.EXECUTING: {ActionStatus.EXECUTED, ActionStatus.FAILED},
        # A failed submit can be resubmitted (same apInfId), a failed execution
        # retried; failing again is recorded as a move of its own.
        ActionStatus.FAILED: {
            ActionStatus.PENDING,
            ActionStatus.SUBMIT_UNKNOWN,
            ActionStatus.EXECUTING,
            ActionStatus.FAILED,
        },
        # executed, rejected, cancelled and expired are terminal.
    },
    subject="Pending action",
    invalid_code="approvals.invalid_transition",
    audit_model="approvals.PendingActionTransition",
    audit_fk="pending_action",
)


# Leaving failed (a resubmit, a retry): the old failure no longer describes the
# action, so those moves clear these fields.
NO_FAILURE = {"failure_stage": "", "failure_code": "", "error_message": ""}


class DeadlinePolicy(models.TextChoices):
    """What happens when Knox has not decided by an action's deadline."""

    WITHDRAW = "withdraw", "Expire and withdraw at Knox"
    ESCALATE = "escalate", "Alert the escalation group (the action stays pending)"


class FailureStage(models.TextChoices):
    SUBMIT = "submit", "Submit to Knox"
    EXECUTE = "execute", "Execution"


class ApproverRole(models.IntegerChoices):
    DRAFTER = 0, "Drafter"
    APPROVE = 1, "Approve"
    CONSULT = 2, "Consult"
    APPROVE_AFTER = 3, "Approve after"
    PARALLEL_CONSULT = 4, "Parallel consult"
    PARALLEL_APPROVE = 7, "Parallel approve"
    NOTIFY = 9, "Notify"
