"""Which business actions can wait for approval, and what runs them.

Apps register their handlers from ``AppConfig.ready()``::

    register_action_handler("operations.create_tenant", create_tenant, payload_serializer=CreateTenantPayload)

A handler is called as ``handler(payload, pending_action=...)`` inside the
transaction that marks the action executed, and returns a JSON-able result.
With a ``payload_serializer`` the payload is validated when the approval is
requested and again right before execution (``payload`` is then the
serializer's ``validated_data``).
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
    payload_serializer: type | None = None


_handlers: dict[str, ActionHandler] = {}


def register_action_handler(
    action_type: str, handler: Callable[..., Any], *, payload_serializer=None
) -> ActionHandler:
    entry = ActionHandler(
        action_type=action_type, handler=handler, payload_serializer=payload_serializer
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
