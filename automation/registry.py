"""Which models automation may watch, and which of their fields rules may write.

An app owns its models' automation surface: it registers them from its own
``AppConfig.ready()``, as it registers approval handlers::

    # operations/apps.py
    if apps.is_installed("automation"):
        from automation.registry import entity_registry

        entity_registry.register(Tenant, writable_fields=("name",))

``writable_fields`` are the fields an ``update_field`` action may set.
State-machine fields stay out: their changes go through the owning app's
services (locked transitions, audit). Models named in the
``AUTOMATION_ENTITIES`` setting (extra ones, not Bureau's own) are watched
too and keep the general rule: any concrete, editable, non-primary-key field.

Automation subscribes to the registry from its own ``ready()``: a model is
watched from the moment it is registered, whichever app's ``ready()`` runs
first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models


@dataclass(frozen=True)
class RegisteredEntity:
    model: type[models.Model]
    writable_fields: tuple[str, ...]


class EntityRegistry:
    def __init__(self) -> None:
        self._entities: dict[str, RegisteredEntity] = {}
        self._listeners: list[Callable[[type[models.Model]], None]] = []

    def register(
        self, model: type[models.Model], *, writable_fields: Iterable[str] = ()
    ) -> RegisteredEntity:
        """Let rules watch ``model`` and set ``writable_fields`` on it (none
        by default). Registering a model again replaces its fields."""
        fields = tuple(writable_fields)
        for name in fields:
            try:
                field = model._meta.get_field(name)
            except FieldDoesNotExist:
                raise ImproperlyConfigured(
                    f"{model._meta.label} has no field {name!r} for rules to write"
                ) from None
            if not getattr(field, "concrete", False) or field.primary_key or not field.editable:
                raise ImproperlyConfigured(
                    f"{model._meta.label}.{name} is not a field rules can write"
                )
        entity = RegisteredEntity(model, fields)
        self._entities[model._meta.label] = entity
        for listener in self._listeners:
            listener(model)
        return entity

    def subscribe(self, listener: Callable[[type[models.Model]], None]) -> None:
        """Call ``listener(model)`` for every model registered, now and later."""
        self._listeners.append(listener)
        for entity in list(self._entities.values()):
            listener(entity.model)

    def models(self) -> dict[str, type[models.Model]]:
        return {label: entity.model for label, entity in self._entities.items()}

    def writable_fields(self, label: str) -> tuple[str, ...] | None:
        """The fields rules may write on ``label``, or None: not registered
        here (an extra model from AUTOMATION_ENTITIES), no allowlist."""
        entity = self._entities.get(label)
        return entity.writable_fields if entity is not None else None


entity_registry = EntityRegistry()
