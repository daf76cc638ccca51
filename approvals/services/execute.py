"""Running an approved action's handler, exactly once: the row is locked,
moved to executing, and the handler runs inside the transaction that marks it
executed (or failed, with a code)."""

from __future__ import annotations

import json
from contextlib import nullcontext

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError as PayloadInvalid

from approvals.choices import KNOX_APPROVED, NO_FAILURE, ActionStatus, FailureStage
from approvals.models import PendingAction
from approvals.registry import get_registered_handlers
from approvals.services.access import (
    pending_action_authorize,
    pending_action_lock,
    pending_action_state_label,
)
from approvals.services.requests import handler_authorize, payload_sha256
from config.errors import ApplicationError, Conflict, InvalidInput, error_text
from config.observability.context import log_context
from config.transitions import TransitionBatch
from operations.sanitize import normalize_code, sanitize_message


def pending_action_execute(*, ap_inf_id: str, actor=None) -> PendingAction:
    """Run the handler of an approved action, exactly once: the row is locked,
    moved to executing, and the handler runs inside the transaction that marks
    it executed. Called again, it finds it executed and changes nothing."""
    with transaction.atomic(), TransitionBatch() as batch:
        action = pending_action_lock(ap_inf_id=ap_inf_id)
        if action.status == ActionStatus.EXECUTED:
            return action
        if action.status != ActionStatus.APPROVED:
            raise action.state_machine.refuse(
                action, ActionStatus.EXECUTING, code="approvals.not_approved"
            )
        pending_action_run(batch=batch, pending_action=action, actor=actor)
    return action


def pending_action_retry(*, pending_action_id: int, actor=None) -> PendingAction:
    """Execute a failed execution again (Knox approved it; the handler failed).
    Needs the operate permission (``actor`` None is the system)."""
    with transaction.atomic(), TransitionBatch() as batch:
        action = pending_action_lock(pk=pending_action_id)
        pending_action_authorize(pending_action=action, actor=actor, doing="retry", own=False)
        approved_in_knox = action.approval_log.knox_status in KNOX_APPROVED
        if (
            action.status != ActionStatus.FAILED
            or action.failure_stage != FailureStage.EXECUTE
            or not approved_in_knox
        ):
            raise action.state_machine.refuse(
                action,
                "retried",
                current=pending_action_state_label(action),
                code="approvals.not_retryable",
            )
        pending_action_run(batch=batch, pending_action=action, actor=actor, reason="retry")
    return action


class HandlerFailed(Exception):
    """A handler (or the checks before it) failed in a batch that runs
    handlers without a savepoint each: the caller undoes the batch and
    records ``error`` for this action without running its handler again."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def pending_action_run(
    *,
    batch: TransitionBatch,
    pending_action: PendingAction,
    actor,
    reason: str = "",
    isolated: bool = True,
    failed_with: Exception | None = None,
) -> None:
    """Run the handler of a locked pending action, in ``batch``: only the payload that was submitted
    for approval, re-validated, and only while the requester may still have it
    run. Any refusal or failure fails the action (stage execute) with a code.

    ``isolated=False`` is for a caller that undoes its whole batch when one
    raises (the poll, through ``each_or_all``): the handler runs without a
    savepoint of its own (two statements fewer an execution) and a refusal or
    failure raises ``HandlerFailed``. The caller then settles the action alone
    with ``failed_with`` its error: recorded as the failure, the handler not
    run a second time."""
    batch.move(pending_action, ActionStatus.EXECUTING, actor=actor, reason=reason, **NO_FAILURE)
    if failed_with is not None:
        _record_failure(batch, pending_action, actor, failed_with)
        return
    try:
        handler = get_registered_handlers().get(pending_action.action_type)
        if handler is None:
            raise InvalidInput(
                f"No handler is registered for {pending_action.action_type!r}.",
                code="approvals.no_handler",
            )
        if (
            payload_sha256(pending_action.action_payload)
            != pending_action.approval_log.payload_sha256
        ):
            raise Conflict(
                "The payload is not the one submitted for approval; it was not run.",
                code="approvals.payload_mismatch",
            )
        payload = pending_action.action_payload
        if handler.payload_serializer is not None:
            # No user in the context: references resolve among everything, and
            # authorize below says whether the requester may still do this.
            serializer = handler.payload_serializer(data=payload)
            serializer.is_valid(raise_exception=True)
            payload = serializer.validated_data
        handler_authorize(handler, _requester_now(pending_action), payload)
        # The handler's writes go if it fails; its log lines name the action.
        with (
            transaction.atomic() if isolated else nullcontext(),
            log_context(pending_action_id=pending_action.pk),
        ):
            result = handler.handler(payload, pending_action=pending_action)
            result = json.loads(json.dumps(result, default=str))
    except Exception as error:  # noqa: BLE001 - any failure is recorded, never lost
        if not isolated:
            raise HandlerFailed(error) from error
        _record_failure(batch, pending_action, actor, error)
        return
    batch.move(
        pending_action,
        ActionStatus.EXECUTED,
        actor=actor,
        reason="handler ran",
        execution_result=result,
        executed_at=timezone.now(),
    )


def _record_failure(
    batch: TransitionBatch, pending_action: PendingAction, actor, error: Exception
) -> None:
    message = sanitize_message(error_text(error, sep="; "))
    batch.move(
        pending_action,
        ActionStatus.FAILED,
        actor=actor,
        reason=message,
        failure_stage=FailureStage.EXECUTE,
        failure_code=_failure_code(error),
        error_message=message,
    )


def _requester_now(action: PendingAction):
    """The requester as the database has them now (None once deleted; not
    locked: a membership change after this is too late). Read with the
    action's lock when the caller joined them (the poll's batch: no query per
    execution), else one query."""
    if action.created_by_id is None:
        return None
    if PendingAction.created_by.is_cached(action):
        return action.created_by
    return get_user_model().objects.filter(pk=action.created_by_id).first()


def _failure_code(error: BaseException) -> str:
    if isinstance(error, ApplicationError):
        return normalize_code(error.code)  # a handler's own code: bounded, dotted
    if isinstance(error, (ValidationError, PayloadInvalid)):
        return "approvals.invalid"
    return "approvals.handler_failed"
