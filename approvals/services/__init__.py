"""The approval workflow: every write of the approvals app. Each module is one
concept; this package re-exports what other modules call.

- ``requests``: validate a request and write the pending action (the database half);
- ``submit``: send it to Knox, resubmit a failed submit;
- ``poll``: ask Knox about the documents in flight and settle them; refresh one;
- ``execute``: run an approved action's handler exactly once; retry a failed one;
- ``withdraw``: withdraw a document and cancel the action;
- ``profiles``: a user's Knox EP ID;
- ``access``: lock one pending action and check who may change it.

Every status change goes through ``config.transitions`` (``transition`` or a
``TransitionBatch`` on a row read with ``lock``), which checks the move
against ``approvals.choices.PENDING_ACTION_STATES`` and writes a
``PendingActionTransition`` in the same transaction. Reads are in
``approvals.selectors``.
"""

from approvals.services.access import OPERATE_PERMISSION
from approvals.services.execute import execute_approved_action, retry_execution
from approvals.services.poll import check_pending_approvals, check_single_approval_status
from approvals.services.profiles import knox_profile_set
from approvals.services.requests import (
    CheckedRequest,
    payload_sha256,
    request_approval,
    validate_approval_request,
)
from approvals.services.submit import (
    ApprovalSubmitFailed,
    resubmit_action,
    submit_pending_action,
    with_approval,
)
from approvals.services.withdraw import withdraw_action

__all__ = [
    "OPERATE_PERMISSION",
    "ApprovalSubmitFailed",
    "CheckedRequest",
    "check_pending_approvals",
    "check_single_approval_status",
    "execute_approved_action",
    "knox_profile_set",
    "payload_sha256",
    "request_approval",
    "resubmit_action",
    "retry_execution",
    "submit_pending_action",
    "validate_approval_request",
    "with_approval",
    "withdraw_action",
]
