"""Requesting an approval, the database half: everything checked before
anything is written (handler, template, variables, approval line, payload,
the requester's right to have it run), then the approval log and the pending
action in one transaction. Sending it to Knox is ``submit.py``."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html

from approvals.choices import ApproverRole
from approvals.deadlines import parse_duration
from approvals.models import (
    EP_ID_MAX,
    ApprovalLog,
    ApprovalTemplate,
    PendingAction,
    PendingActionReminder,
    approval_line_problems,
)
from approvals.registry import ActionHandler, get_registered_handlers
from approvals.selectors import knox_ep_id_get
from approvals.services.deadlines import DeadlinePlan, deadline_plan, deadline_rows
from approvals.templating import (
    PAYLOAD,
    PAYLOAD_PREFIX,
    approval_template_fill,
    caller_variables,
    payload_description,
    payload_fields,
    template_problems,
)
from config.errors import ApplicationError, Forbidden, error_text


@dataclass(frozen=True)
class CheckedRequest:
    """An approval request that passed ``approval_request_validate``."""

    handler: ActionHandler
    template: ApprovalTemplate
    drafter: str
    approvers: list[dict[str, Any]]  # [{ep_id, seq, role}] as they go to Knox
    payload: Any  # what the handler will get (the serializer's validated_data)
    shown_payload: dict[str, Any]  # the same as JSON: what approvers read
    deadline: DeadlinePlan = DeadlinePlan()  # the decision deadline and reminders, if any


def approval_request_validate(
    *,
    action_type: str,
    payload: Any,
    template_name: str,
    variables: Mapping[str, Any],
    approvers: Sequence[str] | None,
    user,
    configured_by=None,
    deadline: str | timedelta | None = None,
) -> CheckedRequest:
    """Check everything before anything is written: one ValidationError with
    every field's problems, then the handler's ``authorize`` for the requester
    (a ``Forbidden``, code ``approvals.not_authorized``). ``configured_by`` is
    whoever set up an automated request (a rule's last editor): the payload
    must pass for them too, so a rule cannot ask in another user's name for
    what its author may not. ``deadline`` (``"2d"``) overrides the template's
    decision deadline."""
    errors: dict[str, list[str]] = {}
    handler = get_registered_handlers().get(action_type)
    if handler is None:
        known = ", ".join(sorted(get_registered_handlers())) or "(none)"
        errors["action_type"] = [f"Unknown action type {action_type!r}. Known: {known}."]
    drafter = knox_ep_id_get(user=user) if user is not None else None
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
    plan = DeadlinePlan()
    if template is not None and "template_name" not in errors:
        plan, problems = deadline_plan(template=template, deadline=deadline)
        for field, messages in problems.items():
            errors.setdefault(field, []).extend(messages)
    elif isinstance(deadline, str) and deadline:  # said now, not only after the template is fixed
        try:
            parse_duration(deadline, what="Deadline")
        except ValueError as error:
            errors["deadline"] = [str(error)]
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
        handler_authorize(handler, configured_by, as_configured)
    handler_authorize(handler, user, validated)
    return CheckedRequest(
        handler=handler,
        template=template,
        drafter=drafter,
        approvers=approver_rows,
        payload=validated,
        shown_payload=shown,
        deadline=plan,
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


def handler_authorize(handler: ActionHandler, user, payload: Any) -> None:
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
    parts = [
        format_html(
            '<div class="bureau-action"><p><b>On approval, Bureau runs {}</b> with:</p>{}</div>',
            action_type,
            summary,
        )
    ]
    if description:
        parts.append(format_html("<p>{}</p>", description))
    parts.append(
        approval_template_fill(
            checked.template.content, variables=variables, shown_payload=checked.shown_payload
        )
    )
    return "".join(str(part) for part in parts)


def pending_action_create(
    *,
    action_type: str,
    payload: Mapping[str, Any],
    title: str,
    template_name: str,
    variables: Mapping[str, Any],
    approvers: Sequence[str] | None = None,
    user,
    description: str | None = None,
    configured_by=None,
    deadline: str | timedelta | None = None,
) -> PendingAction:
    """The database half of ``approval_request``: validate and authorize, then
    write the log and the pending action (with its due time and reminders)
    in one transaction. Nothing is sent to Knox: call
    ``pending_action_submit`` once this has committed."""
    checked = approval_request_validate(
        action_type=action_type,
        payload=payload,
        template_name=template_name,
        variables=variables,
        approvers=approvers,
        user=user,
        configured_by=configured_by,
        deadline=deadline,
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
            template=checked.template,
        )  # pending: the model's default, the machine's one move from None
        reminders = deadline_rows(pending_action=action, plan=checked.deadline, now=timezone.now())
        action.save()
        PendingActionReminder.objects.bulk_create(reminders)
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
