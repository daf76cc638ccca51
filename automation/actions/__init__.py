"""The action registry.

An action type is an object with ``key``, ``label`` and three methods:

- ``validate(config, *, model) -> None``: raise ``ValidationError`` (messages
  naming the bad key) for a config that can never work; called when a rule is
  saved, on the merged config before placeholders are filled;
- ``preview(config, ctx) -> dict``: what it would do, writing nothing and
  sending nothing (dry runs);
- ``run(config, ctx) -> dict``: do it; the returned JSON-safe dict is stored
  in the idempotency table and in the execution's per-action detail.

This module is the protocol and the registry only. The built-in types
(``automation.actions.alerts``, ``.fields``, ``.notifications``) are
registered from ``AutomationConfig.ready()``; another app adds one with a
single call from its own ``ready()``::

    from automation.actions import action_registry
    action_registry.register(SeekApprovalAction())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import models

from config.errors import InvalidInput


class ActionType(Protocol):
    key: str
    label: str

    def validate(self, config: dict[str, Any], *, model: type[models.Model]) -> None: ...

    def preview(self, config: dict[str, Any], ctx: ActionContext) -> dict[str, Any]: ...

    def run(self, config: dict[str, Any], ctx: ActionContext) -> dict[str, Any]: ...


@dataclass
class ActionContext:
    """What an action sees: the rule, the action row, the execution (None in a
    dry run), the entity's model and the row's values before/after."""

    rule: Any
    action: Any
    execution: Any
    model: type[models.Model]
    entity_name: str
    object_pk: str
    trigger: str
    new_values: dict[str, Any] | None
    old_values: dict[str, Any] | None
    # Lives for one worker batch: actions may memoise lookups in it.
    cache: dict[Any, Any] = field(default_factory=dict)
    # The outbox batch's deferred rows (engine.execution.BatchWrites), when the
    # whole batch is undone by any failure: an action may add its inserts to it
    # instead of writing them one by one. None elsewhere.
    writes: Any = None

    @property
    def values(self) -> dict[str, Any]:
        """The row as the rule saw it (the deleted row for a delete)."""
        return self.new_values if self.new_values is not None else (self.old_values or {})


class UnknownActionType(InvalidInput):
    default_code = "automation.unknown_action_type"


class ActionRegistry:
    def __init__(self) -> None:
        self._types: dict[str, ActionType] = {}

    def register(self, action_type: ActionType) -> ActionType:
        existing = self._types.get(action_type.key)
        if existing is not None and type(existing) is not type(action_type):
            raise ValueError(f"action type {action_type.key!r} is already registered")
        self._types[action_type.key] = action_type
        return action_type

    def unregister(self, key: str) -> None:
        self._types.pop(key, None)

    def get(self, key: str) -> ActionType:
        try:
            return self._types[key]
        except KeyError:
            known = ", ".join(sorted(self._types))
            raise UnknownActionType(
                f"Unknown action type {key!r}. Known types: {known}.",
                extra={"known_types": sorted(self._types)},
            ) from None

    def __contains__(self, key: str) -> bool:
        return key in self._types

    def keys(self) -> list[str]:
        return sorted(self._types)

    def choices(self) -> list[tuple[str, str]]:
        return [(key, self._types[key].label) for key in self.keys()]


action_registry = ActionRegistry()
