"""``seek_approval``: an automation rule action that asks Knox for approval.

Automation runs actions inside its worker's transaction, and Knox cannot be
rolled back with it, so the action only writes the pending action (the
database half of ``approval_request``); the document goes to Knox once that
transaction has committed. If the worker dies in between, the pending action
is there unsent; the poller reports it (Knox has no record) and
``approvals_resubmit`` sends it.

Who asks: the request is made in the name of ``requested_by`` (a user with a
Knox EP ID; by default the rule's author), and the handler's authorization
must pass for that user *and* for the rule's last editor: whoever can edit a
rule cannot make it ask, in someone else's name, for what they may not do.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from approvals.models import ApprovalTemplate
from approvals.registry import get_registered_handlers
from approvals.services import (
    approval_request_validate,
    pending_action_create,
    pending_action_submit,
)

KEYS = {
    "action_type",
    "payload",
    "title",
    "template_name",
    "variables",
    "approvers",
    "requested_by",
    "description",
}
# approvers may be left out when the template has a default approval line.
REQUIRED = ("action_type", "title", "template_name")


class SeekApprovalAction:
    key = "seek_approval"
    label = "Seek approval (Knox)"

    def validate(self, config: dict[str, Any], *, model) -> None:
        unknown = sorted(set(config) - KEYS)
        if unknown:
            raise ValidationError(f"seek_approval: unknown keys {', '.join(unknown)}.")
        missing = [key for key in REQUIRED if not config.get(key)]
        if missing:
            raise ValidationError(f"seek_approval: {', '.join(missing)} required.")
        handlers = get_registered_handlers()
        if config["action_type"] not in handlers:
            raise ValidationError(
                f"seek_approval: no handler for action type {config['action_type']!r}; "
                f"known: {', '.join(sorted(handlers)) or '(none)'}."
            )
        template = ApprovalTemplate.objects.filter(
            name=config["template_name"], is_active=True
        ).first()
        if template is None:
            raise ValidationError(
                f"seek_approval: no active approval template {config['template_name']!r}."
            )
        approvers = config.get("approvers")
        if approvers is None or approvers == []:
            if not template.default_approvers:
                raise ValidationError(
                    "seek_approval: approvers required (the template has no default approval line)."
                )
        elif not isinstance(approvers, list) or not all(
            isinstance(a, str) and a.strip() for a in approvers
        ):
            raise ValidationError("seek_approval: approvers must be a list of Knox EP IDs.")
        for key in ("payload", "variables"):
            if not isinstance(config.get(key, {}), dict):
                raise ValidationError(f"seek_approval: {key} must be an object.")
        requested_by = config.get("requested_by")
        if requested_by and not get_user_model().objects.filter(username=requested_by).exists():
            raise ValidationError(f"seek_approval: no user {requested_by!r} to request it.")

    def _requester(self, config: dict[str, Any], ctx):
        username = config.get("requested_by")
        user = (
            get_user_model().objects.filter(username=username).first()
            if username
            else ctx.rule.created_by
        )
        if user is None:
            raise ValidationError(
                "seek_approval: no requester; set requested_by to a user with a Knox EP ID."
            )
        return user

    def _request(self, config: dict[str, Any], user, ctx) -> dict[str, Any]:
        return {
            "payload": config.get("payload") or {},
            "title": config["title"],
            "template_name": config["template_name"],
            "variables": config.get("variables") or {},
            "approvers": config.get("approvers") or None,
            "user": user,
            # The rule's last editor answers for what it asks (see the module docstring).
            "configured_by": ctx.rule.updated_by or ctx.rule.created_by,
        }

    def preview(self, config: dict[str, Any], ctx) -> dict[str, Any]:
        user = self._requester(config, ctx)
        request = self._request(config, user, ctx)
        checked = approval_request_validate(
            action_type=config["action_type"], **{k: v for k, v in request.items() if k != "title"}
        )
        return {
            "would_request_approval": {
                "action_type": config["action_type"],
                "title": config["title"],
                "template_name": config["template_name"],
                "approvers": [a["ep_id"] for a in checked.approvers],
                "requested_by": user.get_username(),
            }
        }

    def run(self, config: dict[str, Any], ctx) -> dict[str, Any]:
        user = self._requester(config, ctx)
        action = pending_action_create(
            action_type=config["action_type"],
            description=config.get("description") or None,
            **self._request(config, user, ctx),
        )
        # After commit, and robust: a Knox failure is recorded on the action, it
        # must not undo the rule's already committed work.
        transaction.on_commit(
            partial(pending_action_submit, pending_action_id=action.pk), robust=True
        )
        return {"pending_action": action.pk, "ap_inf_id": action.ap_inf_id, "status": action.status}
