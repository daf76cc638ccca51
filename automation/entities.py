"""Entities: the Django models automation watches.

``registered_models()`` lists the models the apps registered
(``automation.registry``) and resolves the extra labels of
``AUTOMATION_ENTITIES``; ``entities_sync()`` writes one
``Entity`` row per model; ``snapshot()`` turns a row into JSON-safe values
keyed by column (``workspace_id``, not ``workspace``).
"""

from __future__ import annotations

import datetime
import functools
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db import models, transaction

from automation import conf
from automation.choices import EntityKind, Trigger
from automation.models import AutomationRule, Entity, EntityType, TriggerType
from automation.registry import entity_registry


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "label: why"


def resolve_model(label: str) -> type[models.Model]:
    """``app_label.ModelName`` → model class; LookupError/ValueError with a clear message."""
    try:
        app_label, model_name = label.split(".")
    except ValueError:
        raise ValueError(f"{label!r} is not of the form app_label.ModelName") from None
    if not apps.is_installed(app_label) and app_label not in {
        c.label for c in apps.get_app_configs()
    }:
        raise LookupError(f"{label}: the app {app_label!r} is not installed")
    try:
        return apps.get_model(app_label, model_name)
    except LookupError:
        raise LookupError(
            f"{label}: the app {app_label!r} has no model {model_name!r} (yet)"
        ) from None


# --- inbound sources: entities without a model ------------------------------------------

INBOUND_LABEL_PREFIX = "inbound:"


class InboundPayload:
    """What stands where a model stands for an inbound source's entity
    (``inbound:<slug>``): its events carry the posted JSON object, and rules
    name its fields freely (nothing declares them): ``amount`` for a top-level
    key, ``data.amount`` or ``items.0.sku`` for a nested one. A field the post
    lacks reads as null, as a null column does."""

    label = "an inbound source's posted JSON"

    def __repr__(self) -> str:
        return "INBOUND_PAYLOAD"


INBOUND_PAYLOAD = InboundPayload()


def inbound_label(slug: str) -> str:
    return f"{INBOUND_LABEL_PREFIX}{slug}"


def is_inbound(model: Any) -> bool:
    return model is INBOUND_PAYLOAD


def resolve_entity(label: str) -> type[models.Model] | InboundPayload:
    """What an entity's events are rows of: its model, or INBOUND_PAYLOAD for
    an inbound source's entity. LookupError/ValueError as ``resolve_model``."""
    if label.startswith(INBOUND_LABEL_PREFIX):
        return INBOUND_PAYLOAD
    return resolve_model(label)


_PAYLOAD_PATH = re.compile(r"^[A-Za-z_][\w\-]*(?:\.[\w\-]+)*$")


class _PayloadFieldNames(Mapping):
    """``field_names`` of INBOUND_PAYLOAD: every well-formed path is a name,
    standing for itself. Empty when listed (there is no list to give)."""

    def __getitem__(self, name: str) -> str:
        if isinstance(name, str) and len(name) <= 200 and _PAYLOAD_PATH.match(name):
            return name
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class PayloadValues(Mapping):
    """A posted JSON object read by path: ``get("data.amount")`` walks nested
    objects (and lists, by index); a key that holds the whole path wins."""

    def __init__(self, payload: Mapping[str, Any] | None) -> None:
        self._payload = payload or {}

    def __getitem__(self, path: str) -> Any:
        if path in self._payload:
            return self._payload[path]
        value: Any = self._payload
        for part in path.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                raise KeyError(path)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._payload)

    def __len__(self) -> int:
        return len(self._payload)


def event_values(model: Any, values: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """An event's values as conditions and placeholders read them."""
    if is_inbound(model):
        return PayloadValues(values)
    return values


def registered_models() -> tuple[dict[str, type[models.Model]], list[str]]:
    """The watchable models: the registered ones and the extra ones that
    exist, and a line per extra one that does not."""
    found: dict[str, type[models.Model]] = entity_registry.models()
    missing: list[str] = []
    for label in conf.extra_entity_labels():
        if label in found:
            continue
        try:
            model = resolve_model(label)
        except (LookupError, ValueError) as error:
            missing.append(str(error))
            continue
        found[model._meta.label] = model
    return found, missing


def table_name(model: type[models.Model]) -> str:
    """The table name without a schema prefix (``"sales"."orders"`` → ``orders``)."""
    return model._meta.db_table.split(".")[-1].strip('"')


def entity_kind(model: type[models.Model]) -> str:
    return EntityKind.TABLE if model._meta.managed else EntityKind.VIEW


def entities_sync() -> SyncReport:
    report = SyncReport()
    found, report.missing = registered_models()
    with transaction.atomic():
        ensure_reference_rows()
        kinds = {t.name: t for t in EntityType.objects.all()}
        for label, model in found.items():
            wanted = {"name": table_name(model), "entity_type": kinds[entity_kind(model)]}
            entity = Entity.objects.filter(model_label=label).first()
            if entity is None:
                Entity.objects.create(model_label=label, **wanted)
                report.created.append(label)
            elif entity.name != wanted["name"] or entity.entity_type_id != wanted["entity_type"].pk:
                entity.name = wanted["name"]
                entity.entity_type = wanted["entity_type"]
                entity.save(update_fields=["name", "entity_type"])
                report.updated.append(label)
            else:
                report.unchanged.append(label)
    invalidate_watch_index()
    return report


def ensure_reference_rows() -> None:
    """The seed's standard trigger types and entity types."""
    for trigger in Trigger:
        TriggerType.objects.get_or_create(
            name=trigger.value, defaults={"description": trigger.label}
        )
    for kind in EntityKind:
        EntityType.objects.get_or_create(name=kind.value, defaults={"description": kind.label})


# --- snapshots -------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, bytes | memoryview):
        return None  # binary columns are not compared by rules
    return str(value)


# Columns whose name contains one of these are never copied into events,
# executions or placeholders (a password hash, an API token, a webhook
# secret…): snapshots are stored and shown to operators, so a secret must not
# reach them. Rules cannot test or render such a column either.
SECRET_NAME_PARTS = (
    "password",
    "passwd",
    "token",
    "secret",
    "key_hash",
    "api_key",
    "apikey",
    "private_key",
    "credential",
)


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in SECRET_NAME_PARTS)


@functools.cache
def concrete_fields(model: type[models.Model]) -> tuple[models.Field, ...]:
    """The columns a snapshot copies: every concrete field but the ones whose
    name looks secret (see SECRET_NAME_PARTS)."""
    return tuple(
        f
        for f in model._meta.concrete_fields
        if not (is_secret_name(f.name) or is_secret_name(f.attname))
    )


def snapshot(instance: models.Model) -> dict[str, Any]:
    return {
        f.attname: json_value(f.value_from_object(instance))
        for f in concrete_fields(type(instance))
    }


def fetch_snapshot(model: type[models.Model], pk: Any) -> dict[str, Any] | None:
    attnames = [f.attname for f in concrete_fields(model)]
    row = model._base_manager.filter(pk=pk).values(*attnames).first()
    if row is None:
        return None
    return {key: json_value(value) for key, value in row.items()}


@functools.cache
def field_names(model: type[models.Model]) -> Mapping[str, str]:
    """Every name a condition may use → the snapshot key it reads (for an
    inbound source: any well-formed path, see InboundPayload)."""
    if is_inbound(model):
        return _PayloadFieldNames()
    names: dict[str, str] = {}
    for f in concrete_fields(model):
        names[f.name] = f.attname
        names[f.attname] = f.attname
    return names


@functools.cache
def field_key_for(model: type[models.Model]):
    names = field_names(model)
    return lambda name: names.get(name, name)


# --- which (model, trigger) pairs some active rule watches ------------------------------


class _WatchIndex:
    """model label → {trigger → entity id}, for the rules that are active.

    A save of a model no rule watches costs one dict lookup. The index is read
    from the database at most every AUTOMATION_RULE_CACHE_SECONDS; a change to
    a rule or an entity in this process invalidates it at once."""

    def __init__(self) -> None:
        self._pairs: dict[str, dict[str, int]] | None = None
        self._loaded_at = 0.0

    def invalidate(self) -> None:
        self._pairs = None

    def _load(self) -> dict[str, dict[str, int]]:
        pairs: dict[str, dict[str, int]] = {}
        rows = (
            AutomationRule.objects.filter(is_active=True, entity__is_active=True)
            .values_list("entity__model_label", "trigger_type__name", "entity_id")
            .distinct()
        )
        for label, trigger, entity_id in rows:
            pairs.setdefault(label, {})[trigger] = entity_id
        return pairs

    def entity_for(self, label: str, trigger: str) -> int | None:
        now = time.monotonic()
        if self._pairs is None or now - self._loaded_at > conf.rule_cache_seconds():
            self._pairs = self._load()
            self._loaded_at = now
        return self._pairs.get(label, {}).get(trigger)


watch_index = _WatchIndex()


def invalidate_watch_index(**_kwargs) -> None:
    watch_index.invalidate()
