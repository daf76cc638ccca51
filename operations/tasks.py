"""django-q2 entry points for the operations app. Thin: they call services."""

from __future__ import annotations

from config.errors import Forbidden
from operations.models import OperationRun
from operations.services import reconcile_stale_runs
from operations.tracking import RunAlreadyActive, tracked_run


def reconcile_runs(*, user=None, initiator_name: str = "") -> OperationRun:
    """Reconcile stale runs, recorded as its own ``ops.reconcile_runs`` run in
    the system workspace. Raises ``RunAlreadyActive`` if one is under way, and
    ``Forbidden`` (before anything runs) when ``user`` lacks
    ``operations.reconcile_runs``; without a user it is the system asking."""
    if user is not None and not user.has_perm("operations.reconcile_runs"):
        raise Forbidden(
            "You do not have permission to reconcile operation runs.",
            code="operations.permission_denied",
        )
    # A reconcile that died mid-run would otherwise block every later one
    # (same identity, still "running"): close it first.
    reconcile_stale_runs(types=["ops.reconcile_runs"])
    with tracked_run("ops.reconcile_runs", user=user, initiator_name=initiator_name) as tracker:
        tracker.add_counts(reconcile_stale_runs(exclude_run_id=tracker.run.pk))
    return tracker.run


def reconcile_runs_task() -> dict[str, int] | None:
    """The schedule's entry point: returns the counts, or None when skipped
    because another reconcile is already running."""
    try:
        run = reconcile_runs(initiator_name="schedule")
    except RunAlreadyActive:
        return None
    return run.summary_counts
