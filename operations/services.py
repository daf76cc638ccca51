"""Every write to the operation-run ledger goes through these functions.

Transitions go through ``config.transitions.transition_if``: each is one
conditional UPDATE (``WHERE id = … AND status IN (the states the move is
allowed from)``), which locks the row and checks the current state in one
statement, so two workers can never both move a run.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from config.errors import InvalidInput, InvalidTransition
from config.observability.context import current_request_id
from config.transitions import transition_if
from operations.catalog import OperationType, operation_catalog
from operations.choices import (
    ACTIVE_STATUSES,
    TERMINAL_OUTCOMES,
    RunOutcome,
    RunScope,
    RunStatus,
)
from operations.models import OperationRun, Tenant, Workspace
from operations.sanitize import sanitize_failures

# How often start_run retries when the active run it collided with completed
# before it could be read back. Each retry needs a run to start and finish in
# between, so a handful is plenty.
_START_ATTEMPTS = 5


def system_workspace() -> Workspace:
    """The workspace Bureau's own housekeeping runs in (made by a data migration;
    recreated here if a test flushed it)."""
    workspace, _ = Workspace.objects.get_or_create(
        slug=settings.BUREAU_SYSTEM_WORKSPACE_SLUG, defaults={"name": "System"}
    )
    return workspace


def tenant_create(*, workspace: Workspace, name: str) -> Tenant:
    tenant = Tenant(workspace=workspace, name=name)
    tenant.full_clean()
    tenant.save()
    return tenant


def identity_hash(
    *, op_type: OperationType, workspace_id: int, tenant_id: int | None, inputs: Mapping[str, Any]
) -> str:
    """sha256 over canonical JSON of the type, its scope and its identity inputs."""
    payload = {
        "type": op_type.key,
        "scope": op_type.scope.value,
        "workspace": workspace_id,
        "tenant": tenant_id,
        "inputs": {key: inputs[key] for key in op_type.identity_inputs},
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _resolve_scope(
    op_type: OperationType, workspace: Workspace | None, tenant: Tenant | None
) -> tuple[Workspace, Tenant | None]:
    if op_type.scope == RunScope.TENANT:
        if tenant is None:
            raise InvalidInput(
                f"Operation type {op_type.key!r} is tenant-scoped: a tenant is required.",
                code="operation.tenant_required",
            )
        if workspace is not None and workspace.pk != tenant.workspace_id:
            raise InvalidInput(
                "The tenant does not belong to the given workspace.",
                code="operation.scope_mismatch",
            )
        return tenant.workspace, tenant
    if tenant is not None:
        raise InvalidInput(
            f"Operation type {op_type.key!r} is workspace-scoped: it takes no tenant.",
            code="operation.tenant_not_allowed",
        )
    return workspace or system_workspace(), None


def _check_inputs(op_type: OperationType, inputs: Mapping[str, Any]) -> None:
    expected = set(op_type.identity_inputs)
    missing = sorted(expected - inputs.keys())
    unknown = sorted(inputs.keys() - expected)
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown {', '.join(unknown)}")
        raise InvalidInput(
            f"Identity inputs for {op_type.key!r}: {'; '.join(parts)}.",
            code="operation.bad_inputs",
            extra={"missing": missing, "unknown": unknown},
        )


def _active_runs(*, workspace: Workspace, tenant: Tenant | None, run_hash: str):
    runs = OperationRun.objects.filter(run_identity_hash=run_hash, status__in=ACTIVE_STATUSES)
    if tenant is not None:
        return runs.filter(tenant=tenant)
    return runs.filter(workspace=workspace, tenant__isnull=True)


def start_run(
    *,
    type: str,  # noqa: A002 - the ledger's own word for it
    workspace: Workspace | None = None,
    tenant: Tenant | None = None,
    user=None,
    initiator_name: str = "",
    inputs: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> tuple[OperationRun, bool]:
    """Queue a run, or return the one with the same identity that is already
    active: ``(run, created)``. Safe under races between processes: the partial
    unique index decides, and the loser reads back the winner's row."""
    op_type = operation_catalog.get(type)
    workspace, tenant = _resolve_scope(op_type, workspace, tenant)
    inputs = dict(inputs or {})
    _check_inputs(op_type, inputs)
    run_hash = identity_hash(
        op_type=op_type,
        workspace_id=workspace.pk,
        tenant_id=tenant.pk if tenant else None,
        inputs=inputs,
    )
    run_context = dict(context or {})
    if inputs:
        run_context["inputs"] = inputs
    request_id = current_request_id()  # the request that started it, or queued its task
    if request_id:
        run_context.setdefault("request_id", request_id)
    if not initiator_name:
        initiator_name = user.get_username() if user is not None else "system"

    for _attempt in range(_START_ATTEMPTS):
        run = OperationRun(
            workspace=workspace,
            tenant=tenant,
            user=user,
            initiator_name=initiator_name[:150],
            type=op_type.key,
            run_identity_hash=run_hash,
            context=run_context,
        )
        try:
            if connection.in_atomic_block:
                # Inside the caller's transaction a failed INSERT must not poison
                # it: a savepoint contains the IntegrityError.
                with transaction.atomic():
                    run.save(force_insert=True)
            else:
                run.save(force_insert=True)  # autocommit: the INSERT is its own transaction
            return run, True
        except IntegrityError:
            # Either an active run with this identity exists (the index said
            # no), or it completed between our insert and this read: retry.
            existing = _active_runs(workspace=workspace, tenant=tenant, run_hash=run_hash).first()
            if existing is None:
                continue
            if not _take_over_if_abandoned(existing, op_type):
                return existing, False
            # The abandoned run is closed (by us or by a worker racing us): insert
            # again; the unique index lets exactly one fresh run in.
            run_context["took_over_run"] = existing.pk
    raise IntegrityError(f"could not start or find an active {op_type.key} run")


def _stale_q(op_type: OperationType, now: datetime) -> Q:
    """Runs of this type queued or running past the catalog's limits."""
    return Q(type=op_type.key) & (
        Q(status=RunStatus.QUEUED, created_at__lt=now - op_type.stale_queued_after)
        | Q(status=RunStatus.RUNNING, started_at__lt=now - op_type.stale_running_after)
    )


def _lease_expired_q(op_type: OperationType, now: datetime) -> Q:
    """Running runs of this type whose worker has not renewed the lease in time."""
    cutoff = now - op_type.lease_duration
    return Q(type=op_type.key, status=RunStatus.RUNNING) & (
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )


def _abandonment(run: OperationRun, op_type: OperationType, now: datetime):
    """``(code, message, guard)`` when ``run`` lost its worker, else None: its
    lease ran out (a running run whose heartbeat stopped), or it is past the
    catalog's stale limits."""
    if run.status == RunStatus.RUNNING:
        heartbeat = run.heartbeat_at or run.started_at
        if heartbeat is not None and heartbeat < now - op_type.lease_duration:
            seconds = int((now - heartbeat).total_seconds())
            return (
                "run.lease_expired",
                f"No heartbeat for {seconds} s (lease {op_type.lease_duration.total_seconds():g} s):"
                " its worker is gone; taken over by a new run.",
                _lease_expired_q(op_type, now),
            )
    since = run.started_at if run.status == RunStatus.RUNNING else run.created_at
    limit = (
        op_type.stale_running_after
        if run.status == RunStatus.RUNNING
        else op_type.stale_queued_after
    )
    if since is not None and since < now - limit:
        minutes = int((now - since).total_seconds() // 60)
        return (
            "run.stale",
            f"No progress for {minutes} minutes while {run.status}; taken over by a new run.",
            _stale_q(op_type, now),
        )
    return None


def _take_over_if_abandoned(run: OperationRun, op_type: OperationType) -> bool:
    """Complete ``run`` as failed when its worker is gone (see
    ``_abandonment``): waiting for reconcile would stall every later run of
    the same identity. True when the run is no longer active (completed here,
    or by someone else meanwhile). The conditional UPDATE guarded by the same
    condition lets one taker win; the others see it done."""
    now = timezone.now()
    abandoned = _abandonment(run, op_type, now)
    if abandoned is None:
        return False
    code, message, guard = abandoned
    try:
        complete_run(
            run,
            outcome=RunOutcome.FAILED,
            failures=[{"code": code, "message": message}],
            context={"taken_over_at": now.isoformat()},
            guard=guard,
        )
    except InvalidTransition:
        # Someone else completed or took it over first; still active means it
        # moved on (renewed its lease), and it stays.
        return not OperationRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).exists()
    return True


def run_heartbeat(run_id: int) -> bool:
    """Renew a running run's lease (its worker is alive). Not a state change:
    one UPDATE of ``heartbeat_at`` while the run is still running; False when
    it is not (completed, or taken over)."""
    return bool(
        OperationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            heartbeat_at=timezone.now()
        )
    )


def mark_run_running(run: OperationRun) -> OperationRun:
    """queued → running. Raises ``InvalidTransition`` if someone else got there first."""
    now = timezone.now()
    return transition_if(run, RunStatus.RUNNING, started_at=now, heartbeat_at=now)


def normalize_counts(
    op_type: OperationType, counts: Mapping[str, Any] | None
) -> tuple[dict[str, int], list[str]]:
    """Keep the catalog's keys with non-negative integer values; return the
    normalised counts and the names of the keys that were dropped."""
    kept: dict[str, int] = {}
    dropped: list[str] = []
    for key, value in (counts or {}).items():
        number = _as_count(value)
        if key not in op_type.summary_keys or number is None:
            dropped.append(str(key))
            continue
        kept[key] = number
    return kept, sorted(dropped)


def _as_count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        value = int(value)
    if not isinstance(value, int):
        return None
    return max(value, 0)


def complete_run(
    run: OperationRun,
    *,
    outcome: str,
    counts: Mapping[str, Any] | None = None,
    failures: list[Mapping[str, Any]] | None = None,
    context: Mapping[str, Any] | None = None,
    guard: Q | None = None,
) -> OperationRun:
    """queued|running → completed with a final outcome, normalised counts and
    sanitised failures. ``guard`` narrows when the move is allowed (reconcile
    uses it to complete only runs that are still stale)."""
    if outcome not in TERMINAL_OUTCOMES:
        raise InvalidInput(
            f"Outcome must be one of {', '.join(TERMINAL_OUTCOMES)}; got {outcome!r}.",
            code="operation.bad_outcome",
        )
    op_type = operation_catalog.get(run.type) if run.type in operation_catalog else None
    if op_type is not None:
        clean_counts, dropped = normalize_counts(op_type, counts)
    else:  # a type no longer registered: keep nothing we cannot vouch for
        clean_counts, dropped = {}, sorted(map(str, counts or {}))
    new_context = {**run.context, **(context or {})}
    if dropped:
        new_context["dropped_summary_keys"] = dropped
    now = timezone.now()
    return transition_if(
        run,
        RunStatus.COMPLETED,
        guard=guard,
        outcome=outcome,
        summary_counts=clean_counts,
        failure_summary=sanitize_failures([*run.failure_summary, *(failures or [])]),
        context=new_context,
        completed_at=now,
    )


def _stale_filter(now: datetime) -> Q:
    """Active runs past their type's limits (types no longer registered use the defaults)."""
    from operations.catalog import DEFAULT_STALE_QUEUED_AFTER, DEFAULT_STALE_RUNNING_AFTER

    stale = Q(pk__in=[])
    for op_type in operation_catalog:
        stale |= _stale_q(op_type, now)
    stale |= ~Q(type__in=operation_catalog.keys()) & (
        Q(status=RunStatus.QUEUED, created_at__lt=now - DEFAULT_STALE_QUEUED_AFTER)
        | Q(status=RunStatus.RUNNING, started_at__lt=now - DEFAULT_STALE_RUNNING_AFTER)
    )
    return stale


def reconcile_stale_runs(
    *,
    now: datetime | None = None,
    exclude_run_id: int | None = None,
    types: list[str] | None = None,
) -> dict[str, int]:
    """Complete every stale active run (of ``types``, when given) as failed
    with code ``run.stale``."""
    now = now or timezone.now()
    stale = _stale_filter(now)
    candidates = OperationRun.objects.filter(stale, status__in=ACTIVE_STATUSES).exclude(
        pk=exclude_run_id
    )
    if types is not None:
        candidates = candidates.filter(type__in=types)
    counts = {"checked": 0, "reconciled": 0, "skipped": 0}
    for run in candidates.order_by("pk").iterator():
        counts["checked"] += 1
        since = run.started_at if run.status == RunStatus.RUNNING else run.created_at
        minutes = int((now - since).total_seconds() // 60)
        try:
            complete_run(
                run,
                outcome=RunOutcome.FAILED,
                failures=[
                    {
                        "code": "run.stale",
                        "message": f"No progress for {minutes} minutes while {run.status}; "
                        "completed as failed by reconcile.",
                    }
                ],
                context={"reconciled_at": now.isoformat()},
                # Still stale at the moment of the update: a run that moved on
                # since we read it is left alone.
                guard=stale,
            )
        except InvalidTransition:
            counts["skipped"] += 1
        else:
            counts["reconciled"] += 1
    return counts
