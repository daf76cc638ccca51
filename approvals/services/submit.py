"""Sending a requested approval to Knox (saga order, seed 001: our database
first, Knox second, compensation when Knox says no). A submit that got no
answer is ``submit_unknown``: Knox may or may not have the document, and the
poller asks it by apInfId."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.choices import NO_FAILURE, ActionStatus, FailureStage, KnoxStatus
from approvals.knox import KnoxError, KnoxProtocolError, KnoxTimeout, get_knox_client
from approvals.models import PendingAction
from approvals.selectors import knox_ep_id_get
from approvals.services.access import (
    pending_action_authorize,
    pending_action_lock,
    pending_action_state_label,
)
from approvals.services.requests import pending_action_create
from config.errors import InvalidInput
from config.transitions import TransitionBatch, transition
from operations.sanitize import sanitize_message


class ApprovalSubmitFailed(KnoxError):
    """Knox refused or could not take the document; the action is failed."""


def approval_request(
    *,
    action_type: str,
    payload: Mapping[str, Any],
    title: str,
    template_name: str,
    variables: Mapping[str, Any],
    approvers: Sequence[str] | None = None,
    user,
    description: str | None = None,
    deadline: str | timedelta | None = None,
) -> PendingAction:
    """Hold ``action_type(payload)`` until Knox approves it. Returns the pending
    action (``.ap_inf_id`` is the Knox document id). With no ``approvers`` the
    template's default approval line is used; ``deadline`` (``"2d"``) overrides
    the template's decision deadline. Saga order: the database
    first (``pending_action_create``), committed; Knox second. Call it outside a
    transaction: Knox cannot be rolled back with yours. Inside one, call
    ``pending_action_create`` and ``pending_action_submit`` on commit (as the
    automation action ``seek_approval`` does)."""
    action = pending_action_create(
        action_type=action_type,
        payload=payload,
        title=title,
        template_name=template_name,
        variables=variables,
        approvers=approvers,
        user=user,
        description=description,
        deadline=deadline,
    )
    _submit(action, drafter_ep_id=knox_ep_id_get(user=user), actor=user)
    return action


def pending_action_submit(*, pending_action_id: int) -> PendingAction:
    """The Knox half: submit a requested action that has not been sent yet.
    Safe to call twice (a submitted one is left alone); a failure is recorded
    on the action (failed, with the reason) as in ``approval_request``."""
    action = PendingAction.objects.select_related("approval_log__submitted_by").get(
        pk=pending_action_id
    )
    if action.status != ActionStatus.PENDING or action.approval_log.submitted_at is not None:
        return action
    requester = action.approval_log.submitted_by
    _submit(
        action, drafter_ep_id=knox_ep_id_get(user=requester) if requester else "", actor=requester
    )
    return action


def _submit(action: PendingAction, *, drafter_ep_id: str, actor) -> None:
    """Send the logged document to Knox and record what happened."""
    log = action.approval_log
    try:
        answer = get_knox_client().submit(
            ap_inf_id=log.ap_inf_id,
            subject=log.subject,
            contents=log.contents,
            drafter_ep_id=drafter_ep_id,
            approvers=log.approvers,
            submitted_at=timezone.localtime(log.created_at),
        )
    except (KnoxTimeout, KnoxProtocolError) as error:
        # Knox may have the document: leave it for the poller to settle.
        with transaction.atomic():
            transition(
                pending_action_lock(pk=action.pk),
                ActionStatus.SUBMIT_UNKNOWN,
                actor=actor,
                reason=error.message,
                **NO_FAILURE,
            )
        action.refresh_from_db()
        return
    except KnoxError as error:
        reason = sanitize_message(error.message)
        with transaction.atomic():
            transition(
                pending_action_lock(pk=action.pk),
                ActionStatus.FAILED,
                actor=actor,
                reason=reason,
                failure_stage=FailureStage.SUBMIT,
                failure_code=error.code,
                error_message=reason,
            )
        action.refresh_from_db()
        failed = ApprovalSubmitFailed(
            f"Knox did not take the approval request: {reason}",
            code=error.code,
            extra={"id": action.pk, "ap_inf_id": action.ap_inf_id, "status": action.status},
        )
        failed.status_code = error.status_code  # 503 when Knox is down, 502 when it refused
        raise failed from None
    status = _status_from(answer.get("data", {}).get("status"), default=KnoxStatus.IN_PROGRESS)
    with transaction.atomic(), TransitionBatch() as batch:
        locked = pending_action_lock(pk=action.pk)
        log = locked.approval_log
        log.submitted_at = timezone.now()
        log.knox_status = status
        log.last_knox_response = answer
        batch.save_fields(log, "submitted_at", "knox_status", "last_knox_response")
        if locked.status != ActionStatus.PENDING:  # a resubmit
            batch.move(
                locked, ActionStatus.PENDING, actor=actor, reason="submitted to Knox", **NO_FAILURE
            )
    action.refresh_from_db()


def _status_from(value: Any, *, default: KnoxStatus) -> KnoxStatus:
    try:
        return KnoxStatus(int(value))
    except (TypeError, ValueError):
        return default


def pending_action_resubmit(*, pending_action_id: int, actor=None) -> PendingAction:
    """Submit a failed submit again, with the same apInfId (Knox is idempotent on
    it). Needs the operate permission (``actor`` None is the system)."""
    with transaction.atomic():
        action = pending_action_lock(pk=pending_action_id)
        pending_action_authorize(pending_action=action, actor=actor, doing="resubmit", own=False)
        if action.status != ActionStatus.FAILED or action.failure_stage != FailureStage.SUBMIT:
            raise action.state_machine.refuse(
                action,
                "resubmitted",
                current=pending_action_state_label(action),
                code="approvals.not_resubmittable",
            )
    drafter = (
        knox_ep_id_get(user=action.approval_log.submitted_by)
        if action.approval_log.submitted_by
        else None
    )
    if not drafter:
        raise InvalidInput("The requester no longer has a Knox EP ID.", code="approvals.no_ep_id")
    _submit(action, drafter_ep_id=drafter, actor=actor)
    return action
