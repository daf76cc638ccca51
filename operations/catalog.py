"""The catalog of operation types.

Each app registers the operation types it runs from its ``AppConfig.ready()``.
The catalog is the one place that says, per type, its scope, which summary
counters it may record, which inputs make two runs "the same run", and how
long a run may sit queued or running before reconcile calls it stale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings

from config.errors import InvalidInput
from operations.choices import RunScope

_TYPE_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

DEFAULT_STALE_QUEUED_AFTER = timedelta(minutes=30)
DEFAULT_STALE_RUNNING_AFTER = timedelta(hours=1)
# A running run's worker renews its heartbeat every lease/3; a run whose
# heartbeat is older than its lease lost its worker (None: RUN_LEASE_SECONDS).
DEFAULT_LEASE: timedelta | None = None


class UnknownOperationType(InvalidInput):
    default_code = "operation.unknown_type"


@dataclass(frozen=True)
class OperationType:
    key: str
    label: str
    scope: RunScope
    summary_keys: frozenset[str] = field(default_factory=frozenset)
    identity_inputs: tuple[str, ...] = ()
    stale_queued_after: timedelta = DEFAULT_STALE_QUEUED_AFTER
    stale_running_after: timedelta = DEFAULT_STALE_RUNNING_AFTER
    lease: timedelta | None = DEFAULT_LEASE

    @property
    def lease_duration(self) -> timedelta:
        """How long a running run stays its worker's without a heartbeat."""
        if self.lease is not None:
            return self.lease
        return timedelta(seconds=float(getattr(settings, "RUN_LEASE_SECONDS", 60)))


class OperationCatalog:
    def __init__(self) -> None:
        self._types: dict[str, OperationType] = {}

    def register(
        self,
        key: str,
        *,
        label: str,
        scope: RunScope | str,
        summary_keys: tuple[str, ...] | list[str] | frozenset[str] = (),
        identity_inputs: tuple[str, ...] | list[str] = (),
        stale_queued_after: timedelta = DEFAULT_STALE_QUEUED_AFTER,
        stale_running_after: timedelta = DEFAULT_STALE_RUNNING_AFTER,
        lease: timedelta | None = DEFAULT_LEASE,
    ) -> OperationType:
        if not _TYPE_KEY.match(key):
            raise ValueError(f"operation type {key!r} must be a dotted lowercase identifier")
        op_type = OperationType(
            key=key,
            label=label,
            scope=RunScope(scope),
            summary_keys=frozenset(summary_keys),
            identity_inputs=tuple(identity_inputs),
            stale_queued_after=stale_queued_after,
            stale_running_after=stale_running_after,
            lease=lease,
        )
        existing = self._types.get(key)
        if existing is not None and existing != op_type:
            raise ValueError(f"operation type {key!r} is already registered differently")
        self._types[key] = op_type
        return op_type

    def unregister(self, key: str) -> None:
        self._types.pop(key, None)

    def get(self, key: str) -> OperationType:
        try:
            return self._types[key]
        except KeyError:
            known = ", ".join(sorted(self._types)) or "(none registered)"
            raise UnknownOperationType(
                f"Unknown operation type {key!r}. Known types: {known}.",
                extra={"known_types": sorted(self._types)},
            ) from None

    def __contains__(self, key: str) -> bool:
        return key in self._types

    def __iter__(self):
        return iter(sorted(self._types.values(), key=lambda t: t.key))

    def keys(self) -> list[str]:
        return sorted(self._types)

    def choices(self) -> list[tuple[str, str]]:
        return [(t.key, t.label) for t in self]


operation_catalog = OperationCatalog()
