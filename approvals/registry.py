"""Which business actions can wait for approval, what runs them, and who may
ask for them.

Apps register their handlers from ``AppConfig.ready()``::

    register_action_handler(
        "operations.create_tenant",
        create_tenant,
        payload_serializer=CreateTenantPayload,
        authorize=authorize_create_tenant,
        summary=create_tenant_summary,
    )

- ``handler(payload, *, pending_action)`` is called inside the transaction
  that marks the action executed, and returns a JSON-able result.
- ``payload_serializer`` (a DRF serializer) validates the payload when the
  approval is requested and again right before execution; ``payload`` is then
  its ``validated_data``. At request time its context holds ``user`` (the
  requester): resolve references only among what that user may use, so a
  refusal reads the same whether the object exists or not. At execution the
  context has no ``user`` (references resolve among everything) and
  ``authorize`` decides. The console's *Request approval* form shows one field
  per serializer field (``approvals.forms.payload_form_field``); a handler
  without a serializer gets a JSON box there.
- ``authorize(user, payload)`` (required) says whether ``user`` may have this
  payload run: it returns None, or raises a domain error (``ApplicationError``,
  ``ValidationError`` or Django's ``PermissionDenied``) saying why. It runs at
  request time and again, against the requester, right before execution.
  ``user`` may be None (the requester was deleted): refuse. ``any_requester``
  lets anyone who may request approvals at all (a user with a Knox EP ID) ask.
- ``summary(payload)`` returns safe HTML describing what will run (build it
  with ``approvals.templating``'s helpers); it is always part of the document
  Knox receives. Without one, the payload's fields are listed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from config.errors import InvalidInput


@dataclass(frozen=True)
class ActionHandler:
    action_type: str
    handler: Callable[..., Any]
    authorize: Callable[[Any, Any], None]
    payload_serializer: type | None = None
    summary: Callable[[Any], str] | None = None


_handlers: dict[str, ActionHandler] = {}


def any_requester(user, payload) -> None:
    """``authorize`` for actions anyone allowed to request approvals may request."""


def register_action_handler(
    action_type: str,
    handler: Callable[..., Any],
    *,
    authorize: Callable[[Any, Any], None],
    payload_serializer: type | None = None,
    summary: Callable[[Any], str] | None = None,
) -> ActionHandler:
    if not callable(authorize):
        raise TypeError(f"{action_type}: authorize must be callable (any_requester allows anyone)")
    entry = ActionHandler(
        action_type=action_type,
        handler=handler,
        authorize=authorize,
        payload_serializer=payload_serializer,
        summary=summary,
    )
    existing = _handlers.get(action_type)
    if existing is not None and existing != entry:
        raise ValueError(f"a different handler is already registered for {action_type!r}")
    _handlers[action_type] = entry
    return entry


def unregister_action_handler(action_type: str) -> None:
    _handlers.pop(action_type, None)


def get_registered_handlers() -> dict[str, ActionHandler]:
    return dict(_handlers)


def get_action_handler(action_type: str) -> ActionHandler:
    try:
        return _handlers[action_type]
    except KeyError:
        known = ", ".join(sorted(_handlers)) or "(none)"
        raise InvalidInput(
            f"No handler is registered for action type {action_type!r}. Known: {known}.",
            code="approvals.unknown_action_type",
        ) from None
