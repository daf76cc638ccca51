"""Withdrawing a document: Knox first, then the action is cancelled."""

from __future__ import annotations

from django.db import transaction

from approvals.choices import IN_FLIGHT, ActionStatus
from approvals.knox import get_knox_client
from approvals.models import PendingAction
from approvals.services.access import pending_action_authorize, pending_action_lock
from config.transitions import transition


def pending_action_withdraw(
    *, pending_action_id: int, actor=None, reason: str = ""
) -> PendingAction:
    """Withdraw the document in Knox, then cancel the action. The requester may
    withdraw their own; anyone else needs the operate permission."""
    with transaction.atomic():
        action = pending_action_lock(pk=pending_action_id)
        pending_action_authorize(pending_action=action, actor=actor, doing="withdraw", own=True)
        if action.status not in IN_FLIGHT:
            raise action.state_machine.refuse(
                action, ActionStatus.CANCELLED, code="approvals.not_withdrawable"
            )
    get_knox_client().withdraw(
        ap_inf_id=action.ap_inf_id, reason=reason or "withdrawn by the requester"
    )
    with transaction.atomic():
        return transition(
            pending_action_lock(pk=action.pk),
            ActionStatus.CANCELLED,
            actor=actor,
            reason=reason or "withdrawn in Bureau",
        )
