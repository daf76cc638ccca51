"""Getting hold of one pending action to change it: locked, and only by
whoever may do this to it. Every service that changes a pending action starts
here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from approvals.models import PendingAction
from approvals.selectors import pending_action_is_visible
from config.errors import Forbidden, NotFound
from config.transitions import lock

# Who may check, withdraw, retry and resubmit anyone's pending actions (the
# requester may check and withdraw their own; the system, actor None, anything).
OPERATE_PERMISSION = "approvals.operate_pendingaction"


def pending_action_lock(**lookup) -> PendingAction:
    """One pending action with its log, locked until the transaction ends
    (``config.transitions.lock``); a missing one is ``approvals.not_found``."""
    return lock(
        PendingAction.objects.select_related("approval_log"),
        not_found=lambda: NotFound(
            f"No pending action with {_describe(lookup)}.", code="approvals.not_found"
        ),
        **lookup,
    )


def _describe(lookup: Mapping[str, Any]) -> str:
    return ", ".join(f"{key.replace('pk', 'id')} {value}" for key, value in lookup.items())


def pending_action_authorize(
    *, pending_action: PendingAction, actor, doing: str, own: bool
) -> None:
    """May ``actor`` do this to the pending action? ``None`` is the system (the poller,
    commands run by the operator at the console): yes. Someone who may not see
    the action gets the answer a missing one gets."""
    if actor is None or actor.has_perm(OPERATE_PERMISSION):
        return
    if own and pending_action.created_by_id == actor.pk:
        return
    if not pending_action_is_visible(user=actor, pending_action=pending_action):
        raise NotFound(
            f"No pending action with id {pending_action.pk}.", code="approvals.not_found"
        )
    whose = "anyone's pending action" if own else "a pending action"
    raise Forbidden(
        f"You may not {doing} pending action {pending_action.pk}: that needs the permission "
        f"to operate pending actions (to {doing} {whose}).",
        code="approvals.not_allowed",
    )


def pending_action_state_label(action: PendingAction) -> str:
    return f"{action.status} ({action.failure_stage})" if action.failure_stage else action.status
