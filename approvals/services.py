"""The approval workflow. Every status change of a pending action goes through
``config.transitions`` (``transition`` or a ``TransitionBatch`` on a row read
with ``lock``), which checks the move against ``PENDING_ACTION_STATES`` and
writes a transition row in the same transaction.

Saga order (seed 001): our database first, Knox second, compensation when
Knox says no. A submit that got no answer is ``submit_unknown``: Knox may or
may not have the document, and the poller asks it by apInfId.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html
from rest_framework.exceptions import ValidationError as PayloadInvalid

from approvals.choices import (
    IN_FLIGHT,
    KNOX_APPROVED,
    KNOX_IN_PROGRESS,
    ActionStatus,
    ApproverRole,
    FailureStage,
    KnoxStatus,
)
from approvals.knox import (
    KnoxError,
    KnoxProtocolError,
    KnoxTimeout,
    StatusReport,
    get_knox_client,
)
from approvals.models import (
    EP_ID_MAX,
    ApprovalLog,
    ApprovalTemplate,
    KnoxProfile,
    PendingAction,
    approval_line_problems,
)
from approvals.registry import ActionHandler, get_registered_handlers
from approvals.selectors import may_see_pending_action, pending_actions_in_flight
from approvals.templating import (
    PAYLOAD,
    PAYLOAD_PREFIX,
    caller_variables,
    payload_description,
    payload_fields,
    payload_value,
    replace_template_variables,
    template_problems,
)
from config.errors import (
    ApplicationError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    error_text,
)
from config.observability.context import log_context
from config.transitions import TransitionBatch, each_or_all, lock, lock_many, transition
from operations.sanitize import normalize_code, sanitize_message

logger = logging.getLogger(__name__)

# Who may check, withdraw, retry and resubmit anyone's pending actions (the
# requester may check and withdraw their own; the system, actor None, anything).
OPERATE_PERMISSION = "approvals.operate_pendingaction"


class ApprovalSubmitFailed(KnoxError):
    """Knox refused or could not take the document; the action is failed."""


# --- transitions -------------------------------------------------------------------------

# Leaving failed (a resubmit, a retry): the old failure no longer describes the action.
NO_FAILURE = {"failure_stage": "", "failure_code": "", "error_message": ""}

# What a poll or a submit writes to the approval log, beside the action's move.
LOG_FIELDS = ("knox_status", "last_checked_at", "last_knox_response", "submitted_at", "decided_at")


def _locked(**lookup) -> PendingAction:
    """One pending action with its log, locked until the transaction ends."""
    return lock(
        PendingAction.objects.select_related("approval_log"),
        not_found=lambda: NotFound(
            f"No pending action with {_describe(lookup)}.", code="approvals.not_found"
        ),
        **lookup,
    )


def _describe(lookup: Mapping[str, Any]) -> str:
    return ", ".join(f"{key.replace('pk', 'id')} {value}" for key, value in lookup.items())


# --- requesting ------------------------------------------------------------------------


def ep_id_of(user) -> str | None:
    return KnoxProfile.objects.filter(user=user).values_list("ep_id", flat=True).first() or None


@transaction.atomic
def knox_profile_set(*, user, ep_id: str | None) -> KnoxProfile:
    """Set (or clear) a user's EP ID; a duplicate is refused and nothing is written."""
    profile = KnoxProfile.objects.filter(user=user).first() or KnoxProfile(user=user)
    profile.ep_id = (ep_id or "").strip() or None
    profile.full_clean()
    profile.save()
    return profile


@dataclass(frozen=True)
class CheckedRequest:
    """An approval request that passed ``validate_approval_request``."""

    handler: ActionHandler
    template: ApprovalTemplate
    drafter: str
    approvers: list[dict[str, Any]]  # [{ep_id, seq, role}] as they go to Knox
    payload: Any  # what the handler will get (the serializer's validated_data)
    shown_payload: dict[str, Any]  # the same as JSON: what approvers read


def validate_approval_request(
    *,
    action_type: str,
    payload: Any,
    template_name: str,
    variables: Mapping[str, Any],
    approvers: Sequence[str] | None,
    user,
    configured_by=None,
) -> CheckedRequest:
    """Check everything before anything is written: one ValidationError with
    every field's problems, then the handler's ``authorize`` for the requester
    (a ``Forbidden``, code ``approvals.not_authorized``). ``configured_by`` is
    whoever set up an automated request (a rule's last editor): the payload
    must pass for them too, so a rule cannot ask in another user's name for
    what its author may not."""
    errors: dict[str, list[str]] = {}
    handler = get_registered_handlers().get(action_type)
    if handler is None:
        known = ", ".join(sorted(get_registered_handlers())) or "(none)"
        errors["action_type"] = [f"Unknown action type {action_type!r}. Known: {known}."]
    drafter = ep_id_of(user) if user is not None else None
    if not drafter:
        errors["user"] = [
            "You have no Knox EP ID; ask an administrator to set one before requesting approval."
        ]
    template = ApprovalTemplate.objects.filter(name=template_name).first()
    if template is None:
        errors["template_name"] = [f"No approval template named {template_name!r}."]
    elif not template.is_active:
        errors["template_name"] = [f"The template {template_name!r} is not active."]
    elif broken := (
        template_problems(template.content) + approval_line_problems(template.default_approvers)
    ):  # saved before these checks, or behind the model's back
        errors["template_name"] = [
            f"The template {template_name!r} cannot be used until it is fixed in the admin: "
            + " ".join(broken)
        ]
    elif not isinstance(variables, Mapping):
        errors["variables"] = ["Variables must be an object of name → value."]
    else:
        problems = _variable_problems(template, variables)
        if problems:
            errors["variables"] = problems
    approver_rows, problems = _approval_line(approvers, template)
    if problems:
        errors["approvers"] = problems
    validated = shown = None
    if not isinstance(payload, Mapping):
        errors["payload"] = ["The payload must be an object."]
    elif handler is not None:
        validated, shown, problems = _validate_payload(handler, payload, user=user)
        errors.update(problems)
        if not problems and "template_name" not in errors and template is not None:
            absent = sorted(payload_fields(template.content) - shown.keys())
            if absent:
                errors.setdefault("payload", []).append(
                    f"The template shows {', '.join(f'payload.{f}' for f in absent)}, "
                    "which this payload does not have."
                )
    if errors:
        raise ValidationError(errors)
    if configured_by is not None and configured_by != user:
        as_configured, _shown, problems = _validate_payload(handler, payload, user=configured_by)
        if problems:
            raise ValidationError(problems)
        _authorize(handler, configured_by, as_configured)
    _authorize(handler, user, validated)
    return CheckedRequest(
        handler=handler,
        template=template,
        drafter=drafter,
        approvers=approver_rows,
        payload=validated,
        shown_payload=shown,
    )


def _variable_problems(template: ApprovalTemplate, variables: Mapping[str, Any]) -> list[str]:
    given = set(variables)
    reserved = sorted(n for n in given if n == PAYLOAD or n.startswith(PAYLOAD_PREFIX))
    expected = caller_variables(template.content)
    missing = sorted(expected - given)
    unknown = sorted(given - expected - set(reserved))
    problems = []
    if missing:
        problems.append(f"Missing variables: {', '.join(missing)}.")
    if unknown:
        problems.append(f"Unknown variables: {', '.join(unknown)}.")
    if reserved:
        problems.append(
            f"{', '.join(reserved)}: payload fields come from the payload, not from variables."
        )
    return problems


def _approval_line(
    approvers: Sequence[str] | None, template: ApprovalTemplate | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The approvers the request names (each approves, in order), or else the
    template's default approval line (with its roles)."""
    named = [str(a).strip() for a in approvers or [] if str(a).strip()]
    if len(set(named)) != len(named):
        return [], ["An approver is listed twice."]
    if any(len(a) > EP_ID_MAX for a in named):
        return [], [f"An EP ID is at most {EP_ID_MAX} characters."]
    if named:
        line = [{"ep_id": ep_id, "role": int(ApproverRole.APPROVE)} for ep_id in named]
    elif template is not None and template.default_approvers:
        line = template.default_approvers
    else:
        return [], [
            "At least one approver's EP ID is required (the template has no default approval line)."
        ]
    return [
        {"ep_id": a["ep_id"], "seq": seq, "role": int(a["role"])} for seq, a in enumerate(line, 1)
    ], []


def _validate_payload(
    handler: ActionHandler, payload: Mapping[str, Any], *, user
) -> tuple[Any, dict[str, Any] | None, dict[str, list[str]]]:
    """``(validated, shown, field errors)``. The serializer sees the requester
    (``context["user"]``) and resolves references among what they may use."""
    if handler.payload_serializer is None:
        plain = _as_json(payload)
        return plain, plain, {}
    serializer = handler.payload_serializer(data=payload, context={"user": user})
    if not serializer.is_valid():
        errors = {}
        for field, messages in serializer.errors.items():
            key = "payload" if field == "non_field_errors" else f"payload.{field}"
            errors[key] = (
                [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]
            )
        return None, None, errors
    return serializer.validated_data, _as_json(serializer.data), {}


def _authorize(handler: ActionHandler, user, payload: Any) -> None:
    """The handler's ``authorize``; any refusal becomes one stable error."""
    try:
        handler.authorize(user, payload)
    except (ApplicationError, ValidationError, PermissionDenied) as refusal:
        detail = (
            str(refusal) if isinstance(refusal, PermissionDenied) else error_text(refusal, sep="; ")
        )
        raise Forbidden(
            detail or "You may not request this action.", code="approvals.not_authorized"
        ) from None


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def payload_sha256(payload: Any) -> str:
    """sha256 of the payload's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _render_contents(
    *,
    checked: CheckedRequest,
    variables: Mapping[str, Any],
    action_type: str,
    description: str | None,
) -> str:
    """The document approvers read: what will run (the handler's summary of the
    validated payload, always first, so no template markup can hide it), the
    description, then the template with the caller's variables and the
    ``{{payload.<field>}}`` values taken from the payload itself."""
    handler = checked.handler
    summary = (
        handler.summary(checked.payload)
        if handler.summary is not None
        else payload_description(checked.shown_payload)
    )
    filled = {
        **variables,
        **{f"{PAYLOAD_PREFIX}{k}": payload_value(v) for k, v in checked.shown_payload.items()},
    }
    parts = [
        format_html(
            '<div class="bureau-action"><p><b>On approval, Bureau runs {}</b> with:</p>{}</div>',
            action_type,
            summary,
        )
    ]
    if description:
        parts.append(format_html("<p>{}</p>", description))
    parts.append(replace_template_variables(checked.template.content, filled))
    return "".join(str(part) for part in parts)


def with_approval(
    action_type: str,
    payload: Mapping[str, Any],
    *,
    title: str,
    template_name: str,
    variables: Mapping[str, Any],
    approvers: Sequence[str] | None = None,
    user,
    description: str | None = None,
) -> PendingAction:
    """Hold ``action_type(payload)`` until Knox approves it. Returns the pending
    action (``.ap_inf_id`` is the Knox document id). With no ``approvers`` the
    template's default approval line is used. Saga order: the database
    first (``request_approval``), committed; Knox second. Call it outside a
    transaction: Knox cannot be rolled back with yours. Inside one, call
    ``request_approval`` and ``submit_pending_action`` on commit (as the
    automation action ``seek_approval`` does)."""
    action = request_approval(
        action_type,
        payload,
        title=title,
        template_name=template_name,
        variables=variables,
        approvers=approvers,
        user=user,
        description=description,
    )
    _submit(action, drafter_ep_id=ep_id_of(user), actor=user)
    return action


def request_approval(
    action_type: str,
    payload: Mapping[str, Any],
    *,
    title: str,
    template_name: str,
    variables: Mapping[str, Any],
    approvers: Sequence[str] | None = None,
    user,
    description: str | None = None,
    configured_by=None,
) -> PendingAction:
    """The database half of ``with_approval``: validate and authorize, then
    write the log and the pending action in one transaction. Nothing is sent to
    Knox: call ``submit_pending_action`` once this has committed."""
    checked = validate_approval_request(
        action_type=action_type,
        payload=payload,
        template_name=template_name,
        variables=variables,
        approvers=approvers,
        user=user,
        configured_by=configured_by,
    )
    if not title or len(title) > 500:
        raise ValidationError({"title": ["A title of 1 to 500 characters is required."]})
    contents = _render_contents(
        checked=checked, variables=variables, action_type=action_type, description=description
    )
    stored_payload = _as_json(payload)
    ap_inf_id = uuid.uuid4().hex
    with transaction.atomic():
        log = ApprovalLog.objects.create(
            ap_inf_id=ap_inf_id,
            subject=title,
            contents=contents,
            contents_sha256=hashlib.sha256(contents.encode()).hexdigest(),
            approvers=checked.approvers,
            submitted_by=user,
        )
        action = PendingAction(
            ap_inf_id=ap_inf_id,
            approval_log=log,
            action_type=action_type,
            action_payload=stored_payload,
            created_by=user,
        )  # pending: the model's default, the machine's one move from None
        action.save()
        # Hash the payload as the database gives it back, as execution will read
        # it (PostgreSQL's jsonb returns 1e20 as an integer, for one).
        stored = PendingAction.objects.values_list("action_payload", flat=True).get(pk=action.pk)
        log.payload_sha256 = payload_sha256(stored)
        log.save(update_fields=["payload_sha256"])
        # The creation is the machine's move from None: audited like every other.
        PendingAction.state_machine.audit_row(
            action,
            from_state=None,
            to_state=action.status,
            actor=user,
            reason="requested",
            extra=None,
        ).save()
    return action


def submit_pending_action(pending_action_id: int) -> PendingAction:
    """The Knox half: submit a requested action that has not been sent yet.
    Safe to call twice (a submitted one is left alone); a failure is recorded
    on the action (failed, with the reason) as in ``with_approval``."""
    action = PendingAction.objects.select_related("approval_log__submitted_by").get(
        pk=pending_action_id
    )
    if action.status != ActionStatus.PENDING or action.approval_log.submitted_at is not None:
        return action
    requester = action.approval_log.submitted_by
    _submit(action, drafter_ep_id=ep_id_of(requester) if requester else "", actor=requester)
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
                _locked(pk=action.pk),
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
                _locked(pk=action.pk),
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
        locked = _locked(pk=action.pk)
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


def resubmit_action(pending_action_id: int, *, actor=None) -> PendingAction:
    """Submit a failed submit again, with the same apInfId (Knox is idempotent on
    it). Needs the operate permission (``actor`` None is the system)."""
    with transaction.atomic():
        action = _locked(pk=pending_action_id)
        _check_actor(action, actor, doing="resubmit", own=False)
        if action.status != ActionStatus.FAILED or action.failure_stage != FailureStage.SUBMIT:
            raise action.state_machine.refuse(
                action,
                "resubmitted",
                current=_state_label(action),
                code="approvals.not_resubmittable",
            )
    drafter = (
        ep_id_of(action.approval_log.submitted_by) if action.approval_log.submitted_by else None
    )
    if not drafter:
        raise InvalidInput("The requester no longer has a Knox EP ID.", code="approvals.no_ep_id")
    _submit(action, drafter_ep_id=drafter, actor=actor)
    return action


def _check_actor(action: PendingAction, actor, *, doing: str, own: bool) -> None:
    """May ``actor`` do this to the action? ``None`` is the system (the poller,
    commands run by the operator at the console): yes. Someone who may not see
    the action gets the answer a missing one gets."""
    if actor is None or actor.has_perm(OPERATE_PERMISSION):
        return
    if own and action.created_by_id == actor.pk:
        return
    if not may_see_pending_action(actor, action):
        raise NotFound(f"No pending action with id {action.pk}.", code="approvals.not_found")
    whose = "anyone's pending action" if own else "a pending action"
    raise Forbidden(
        f"You may not {doing} pending action {action.pk}: that needs the permission "
        f"to operate pending actions (to {doing} {whose}).",
        code="approvals.not_allowed",
    )


def _state_label(action: PendingAction) -> str:
    return f"{action.status} ({action.failure_stage})" if action.failure_stage else action.status


# --- polling ---------------------------------------------------------------------------------

# Changed documents settled per transaction.
SETTLE_BATCH = 100

COUNT_KEYS = ("checked", "updated", "executed", "rejected", "cancelled", "failed")


def check_pending_approvals(*, tracker=None) -> dict[str, int]:
    """One poll cycle: ask Knox about every in-flight document in batches, act on
    what changed, execute what is approved. One bad item never stops the cycle."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    now = timezone.now()
    # A submit still under way has not heard from Knox yet: don't race it.
    rows = pending_actions_in_flight(
        created_before=now - timedelta(seconds=settings.KNOX_SUBMIT_GRACE_SECONDS)
    )
    reports: dict[str, StatusReport] = {}
    if rows:
        try:
            reports = get_knox_client().statuses(row.ap_inf_id for row in rows)
        except KnoxError as error:
            # The whole cycle is blind: record it and let the next one try.
            _record_failure(tracker, counts, error.code, f"Status request failed: {error.message}")
            rows = []
    unchanged: list[str] = []
    changed: list[_Changed] = []
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
            unchanged.append(row.ap_inf_id)
        else:
            changed.append(
                _Changed(row.pk, row.ap_inf_id, report, submitted=row.submitted_at is not None)
            )
    for start in range(0, len(changed), SETTLE_BATCH):
        _settle_batch(changed[start : start + SETTLE_BATCH], counts, tracker)
    # Unchanged documents: one UPDATE per 500, not a query each (no state moves).
    for start in range(0, len(unchanged), 500):
        ApprovalLog.objects.filter(ap_inf_id__in=unchanged[start : start + 500]).update(
            last_checked_at=now
        )
    return counts


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

    results = each_or_all(
        batch,
        together=_settle_together,
        alone=lambda item: (item, *_settle_alone(item.pk, item.report, submitted=item.submitted)),
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
) -> str | None:
    """Apply what Knox said to a locked action, in ``batch`` (written when the
    batch ends): an approval runs the handler right there, in the same
    transaction (a crash rolls it all back, and the next poll sees the approval
    again). Returns "executed", "execution_failed", "rejected", "cancelled",
    "submit_failed", "updated", or None when someone else settled it meanwhile."""
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
    batch.save_fields(log, *LOG_FIELDS)
    opinion = str((report.raw or {}).get("opinion") or "")
    if status in KNOX_APPROVED:
        batch.move(
            action,
            ActionStatus.APPROVED,
            actor=actor,
            reason=f"Knox status {int(status)} ({status.label})",
        )
        _run_handler(batch, action, actor=actor)
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


def _settle_alone(
    pk: int, report: StatusReport, *, submitted: bool, actor=None
) -> tuple[str | None, PendingAction]:
    """Settle one document in its own transaction."""
    if report.error is not None:
        raise report.error
    with transaction.atomic(), TransitionBatch() as batch:
        action = _locked(pk=pk)
        outcome = _settle(
            batch, action, report, now=timezone.now(), submitted=submitted, actor=actor
        )
    return outcome, action


def _settle_together(items: Sequence[_Changed]) -> list[tuple[_Changed, str | None, PendingAction]]:
    """Settle a batch of documents in the caller's transaction: the rows locked
    in primary-key order, written with one statement per table. Any error
    raises; ``each_or_all`` then settles them one by one."""
    locked = lock_many(
        PendingAction.objects.select_related("approval_log"), [item.pk for item in items]
    )
    actions = {action.pk: action for action in locked}
    now = timezone.now()
    results = []
    with TransitionBatch() as batch:
        for item in items:
            action = actions.get(item.pk)
            if action is not None:
                outcome = _settle(batch, action, item.report, now=now, submitted=item.submitted)
                results.append((item, outcome, action))
    return results


def check_single_approval_status(ap_inf_id: str, *, actor=None) -> PendingAction:
    """Ask Knox about one document now (the "refresh" button), and act on it.
    The requester may for their own; anyone else needs the operate permission."""
    action = (
        PendingAction.objects.select_related("approval_log").filter(ap_inf_id=ap_inf_id).first()
    )
    if action is None or (actor is not None and not may_see_pending_action(actor, action)):
        raise NotFound(f"No pending action with apInfId {ap_inf_id}.", code="approvals.not_found")
    _check_actor(action, actor, doing="check the status of", own=True)
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
        _settle_alone(
            action.pk, report, submitted=action.approval_log.submitted_at is not None, actor=actor
        )
    elif action.status == ActionStatus.APPROVED:
        execute_approved_action(ap_inf_id, actor=actor)
    action.refresh_from_db()
    return action


# --- executing ---------------------------------------------------------------------------------


def execute_approved_action(ap_inf_id: str, *, actor=None) -> PendingAction:
    """Run the handler of an approved action, exactly once: the row is locked,
    moved to executing, and the handler runs inside the transaction that marks
    it executed. Called again, it finds it executed and changes nothing."""
    with transaction.atomic(), TransitionBatch() as batch:
        action = _locked(ap_inf_id=ap_inf_id)
        if action.status == ActionStatus.EXECUTED:
            return action
        if action.status != ActionStatus.APPROVED:
            raise action.state_machine.refuse(
                action, ActionStatus.EXECUTING, code="approvals.not_approved"
            )
        _run_handler(batch, action, actor=actor)
    return action


def retry_execution(pending_action_id: int, *, actor=None) -> PendingAction:
    """Execute a failed execution again (Knox approved it; the handler failed).
    Needs the operate permission (``actor`` None is the system)."""
    with transaction.atomic(), TransitionBatch() as batch:
        action = _locked(pk=pending_action_id)
        _check_actor(action, actor, doing="retry", own=False)
        approved_in_knox = action.approval_log.knox_status in KNOX_APPROVED
        if (
            action.status != ActionStatus.FAILED
            or action.failure_stage != FailureStage.EXECUTE
            or not approved_in_knox
        ):
            raise action.state_machine.refuse(
                action, "retried", current=_state_label(action), code="approvals.not_retryable"
            )
        _run_handler(batch, action, actor=actor, reason="retry")
    return action


def _run_handler(batch: TransitionBatch, action: PendingAction, *, actor, reason: str = "") -> None:
    """Run the handler on a locked action: only the payload that was submitted
    for approval, re-validated, and only while the requester may still have it
    run. Any refusal or failure fails the action (stage execute) with a code."""
    batch.move(action, ActionStatus.EXECUTING, actor=actor, reason=reason, **NO_FAILURE)
    try:
        handler = get_registered_handlers().get(action.action_type)
        if handler is None:
            raise InvalidInput(
                f"No handler is registered for {action.action_type!r}.", code="approvals.no_handler"
            )
        if payload_sha256(action.action_payload) != action.approval_log.payload_sha256:
            raise Conflict(
                "The payload is not the one submitted for approval; it was not run.",
                code="approvals.payload_mismatch",
            )
        payload = action.action_payload
        if handler.payload_serializer is not None:
            # No user in the context: references resolve among everything, and
            # authorize below says whether the requester may still do this.
            serializer = handler.payload_serializer(data=payload)
            serializer.is_valid(raise_exception=True)
            payload = serializer.validated_data
        _authorize(handler, _requester_now(action), payload)
        # The handler's writes go if it fails; its log lines name the action.
        with transaction.atomic(), log_context(pending_action_id=action.pk):
            result = handler.handler(payload, pending_action=action)
            result = json.loads(json.dumps(result, default=str))
    except Exception as error:  # noqa: BLE001 - any failure is recorded, never lost
        message = sanitize_message(error_text(error, sep="; "))
        batch.move(
            action,
            ActionStatus.FAILED,
            actor=actor,
            reason=message,
            failure_stage=FailureStage.EXECUTE,
            failure_code=_failure_code(error),
            error_message=message,
        )
        return
    batch.move(
        action,
        ActionStatus.EXECUTED,
        actor=actor,
        reason="handler ran",
        execution_result=result,
        executed_at=timezone.now(),
    )


def _requester_now(action: PendingAction):
    """The requester as the database has them now (None once deleted; one query
    per execution, not locked: a membership change after this is too late)."""
    if action.created_by_id is None:
        return None
    return get_user_model().objects.filter(pk=action.created_by_id).first()


def _failure_code(error: BaseException) -> str:
    if isinstance(error, ApplicationError):
        return normalize_code(error.code)  # a handler's own code: bounded, dotted
    if isinstance(error, (ValidationError, PayloadInvalid)):
        return "approvals.invalid"
    return "approvals.handler_failed"


def withdraw_action(pending_action_id: int, *, actor=None, reason: str = "") -> PendingAction:
    """Withdraw the document in Knox, then cancel the action. The requester may
    withdraw their own; anyone else needs the operate permission."""
    with transaction.atomic():
        action = _locked(pk=pending_action_id)
        _check_actor(action, actor, doing="withdraw", own=True)
        if action.status not in IN_FLIGHT:
            raise action.state_machine.refuse(
                action, ActionStatus.CANCELLED, code="approvals.not_withdrawable"
            )
    get_knox_client().withdraw(
        ap_inf_id=action.ap_inf_id, reason=reason or "withdrawn by the requester"
    )
    with transaction.atomic():
        return transition(
            _locked(pk=action.pk),
            ActionStatus.CANCELLED,
            actor=actor,
            reason=reason or "withdrawn in Bureau",
        )
