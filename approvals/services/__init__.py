"""The approval workflow: every write of the approvals app. Each module is one
concept; this package re-exports what other modules call.

- ``requests``: validate a request and write the pending action (the database half);
- ``submit``: send it to Knox, resubmit a failed submit;
- ``poll``: ask Knox about the documents in flight and settle them; refresh one;
- ``execute``: run an approved action's handler exactly once; retry a failed one;
- ``withdraw``: withdraw a document and cancel the action;
- ``deadlines``: reminders before a decision deadline, and expiry (withdrawn
  at Knox) or escalation after it;
- ``profiles``: a user's Knox EP ID;
- ``access``: lock one pending action and check who may change it.

Every status change goes through ``config.transitions`` (``transition`` or a
``TransitionBatch`` on a row read with ``lock``), which checks the move
against ``approvals.choices.PENDING_ACTION_STATES`` and writes a
``PendingActionTransition`` in the same transaction. Reads are in
``approvals.selectors``.
"""

from approvals.services.access import OPERATE_PERMISSION
from approvals.services.deadlines import (
    pending_action_deadlines_sweep,
    pending_action_expire,
    pending_action_withdraw_expired,
)
from approvals.services.execute import pending_action_execute, pending_action_retry
from approvals.services.poll import pending_action_refresh, pending_actions_poll
from approvals.services.profiles import knox_profile_set
from approvals.services.requests import (
    CheckedRequest,
    approval_request_validate,
    payload_sha256,
    pending_action_create,
)
from approvals.services.submit import (
    ApprovalSubmitFailed,
    approval_request,
    pending_action_resubmit,
    pending_action_submit,
)
from approvals.services.withdraw import pending_action_withdraw

__all__ = [
    "OPERATE_PERMISSION",
    "ApprovalSubmitFailed",
    "CheckedRequest",
    "approval_request",
    "approval_request_validate",
    "knox_profile_set",
    "payload_sha256",
    "pending_action_create",
    "pending_action_deadlines_sweep",
    "pending_action_execute",
    "pending_action_expire",
    "pending_action_refresh",
    "pending_action_resubmit",
    "pending_action_retry",
    "pending_action_submit",
    "pending_action_withdraw",
    "pending_action_withdraw_expired",
    "pending_actions_poll",
]
