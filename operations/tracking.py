"""``tracked_run``: the wrapper every scheduled task runs inside.

It starts (or reuses) the run, marks it running, lets the body record counts
and failures, and completes it: succeeded, partially succeeded when the body
recorded failures, failed when the body raised (the exception becomes a
failure entry with a stable code and is re-raised).

If another worker is already running the same identity, entering raises
``RunAlreadyActive``; used as a decorator, the call is skipped and returns
``None``, so overlapping schedule cycles dedupe instead of doubling up. A run
past its type's stale limit is not "already running": its worker died, and
``start_run`` completes it as failed (``run.stale``) and starts a fresh one.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, connections

from config.errors import Conflict, InvalidTransition
from config.observability.context import log_context
from operations.catalog import operation_catalog
from operations.choices import RunOutcome
from operations.models import OperationRun, Tenant, Workspace
from operations.sanitize import normalize_code, sanitize_message
from operations.services import complete_run, mark_run_running, run_heartbeat, start_run

logger = logging.getLogger(__name__)


class RunAlreadyActive(Conflict):
    default_code = "operation.already_active"

    def __init__(self, run: OperationRun):
        super().__init__(
            f"{run.type} is already {run.status} as run {run.pk}.",
            extra={"run_id": run.pk, "current_state": run.status},
        )
        self.run = run


def failure_code_for(exc: BaseException) -> str:
    """A stable code for an exception: its own ``code`` when it has one
    (``ApplicationError``), else ``task.<exception_class_in_snake_case>``."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return normalize_code(code)
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
    return normalize_code(f"task.{snake}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class RunTracker:
    """What the body of a tracked run sees: the run, and places to record."""

    def __init__(self, run: OperationRun):
        self.run = run
        self.counts: dict[str, Any] = {}
        self.failures: list[dict[str, str]] = []
        self.context: dict[str, Any] = {}
        self.outcome: str | None = None

    def incr(self, key: str, amount: int = 1) -> None:
        self.add_counts({key: amount})

    def add_counts(self, counts: Mapping[str, Any]) -> None:
        """Add integer counts; anything else is kept as given, for
        ``complete_run`` to drop and record as a dropped key."""
        for key, amount in counts.items():
            current = self.counts.get(key, 0)
            if _is_int(amount) and _is_int(current):
                self.counts[key] = current + amount
            else:
                self.counts[key] = amount

    def add_failure(self, code: str, message: str) -> None:
        self.failures.append({"code": code, "message": message})


class LeaseKeeper:
    """Renews a running run's heartbeat every lease/3 from a thread of its
    own (with its own database connection), until stopped. A worker that
    dies stops renewing; the next start of the same run finds the lease run
    out and takes the run over (``operations.services.start_run``)."""

    def __init__(self, run: OperationRun, lease: timedelta):
        self.run_id = run.pk
        self.interval = max(lease.total_seconds() / 3, 0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-run-{run.pk}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _renew(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    if not run_heartbeat(self.run_id):
                        return  # completed, or taken over: nothing to hold
                except DatabaseError:
                    # Busy or briefly unreachable: the next beat tries again,
                    # and the lease outlives a couple of missed ones.
                    logger.warning("could not renew the lease of run %s", self.run_id)
        finally:
            connections.close_all()


class tracked_run:  # noqa: N801 - reads as a function at its call sites
    def __init__(
        self,
        type: str,  # noqa: A002
        *,
        workspace: Workspace | None = None,
        tenant: Tenant | None = None,
        inputs: Mapping[str, Any] | None = None,
        user=None,
        initiator_name: str = "",
        run: OperationRun | None = None,
    ):
        self.type = type
        self.workspace = workspace
        self.tenant = tenant
        self.inputs = inputs
        self.user = user
        self.initiator_name = initiator_name
        self.run = run
        self.tracker: RunTracker | None = None
        self._log_context = None
        self._lease: LeaseKeeper | None = None

    def _fresh(self) -> tracked_run:
        return tracked_run(
            self.type,
            workspace=self.workspace,
            tenant=self.tenant,
            inputs=self.inputs,
            user=self.user,
            initiator_name=self.initiator_name,
            run=self.run,
        )

    def __enter__(self) -> RunTracker:
        run = self.run
        if run is None:
            run, _created = start_run(
                type=self.type,
                workspace=self.workspace,
                tenant=self.tenant,
                inputs=self.inputs,
                user=self.user,
                initiator_name=self.initiator_name,
            )
        try:
            mark_run_running(run)
        except InvalidTransition:
            run.refresh_from_db()
            raise RunAlreadyActive(run) from None
        self.tracker = RunTracker(run)
        # The lease: renewed from another thread while the body works, so a
        # body blocked in one long call (Knox, a merge) still holds it.
        self._lease = LeaseKeeper(run, operation_catalog.get(run.type).lease_duration)
        self._lease.start()
        # Log lines written while the run works carry its id (JSON logs).
        self._log_context = log_context(run_id=run.pk)
        self._log_context.__enter__()
        return self.tracker

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if self._lease is not None:
                self._lease.stop()
                self._lease = None
            return self._complete(exc)
        finally:
            if self._log_context is not None:
                self._log_context.__exit__(None, None, None)
                self._log_context = None

    def _complete(self, exc) -> bool:
        tracker = self.tracker
        assert tracker is not None
        failures = list(tracker.failures)
        if exc is not None:
            outcome = RunOutcome.FAILED
            failures.append(
                {
                    "code": failure_code_for(exc),
                    "message": sanitize_message(f"{type(exc).__name__}: {exc}"),
                }
            )
        else:
            outcome = tracker.outcome or (
                RunOutcome.PARTIALLY_SUCCEEDED if failures else RunOutcome.SUCCEEDED
            )
        try:
            complete_run(
                tracker.run,
                outcome=outcome,
                counts=dict(tracker.counts),
                failures=failures,
                context=tracker.context,
            )
        except InvalidTransition:
            # Completed elsewhere while we ran: taken over as stale by a later
            # start, or reconciled. Its ledger entry says so; nothing to undo.
            logger.warning(
                "operation run %s was completed elsewhere (stale) before it finished",
                tracker.run.pk,
            )
        except Exception:
            # The body's own exception matters more; reconcile will close the run.
            logger.exception("could not complete operation run %s", tracker.run.pk)
            if exc is None:
                raise
        return False  # never swallow the body's exception

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """As a decorator: ``func(tracker, *args, **kwargs)``. A returned mapping
        is added to the counts. Skipped (returns ``None``) when the same run is
        already active elsewhere."""

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            manager = self._fresh()
            try:
                tracker = manager.__enter__()
            except RunAlreadyActive as skipped:
                logger.info("skipped: %s", skipped.message)
                return None
            try:
                result = func(tracker, *args, **kwargs)
                if isinstance(result, Mapping):
                    tracker.add_counts(result)
            except BaseException:
                manager.__exit__(*sys.exc_info())
                raise
            manager.__exit__(None, None, None)
            return result

        return wrapper
