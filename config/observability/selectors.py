"""Reads of Bureau's operational state, shared by ``/metrics``
(:mod:`config.observability.metrics`) and the operator console's "Needs
attention" tiles (:mod:`config.observability.attention`).

A *problem* is a named condition on one model's rows (failed pending actions
of a stage, stuck scan jobs, ...). The console counts every problem with one
aggregate query per model, whatever the table sizes, and each model's
changelist filters by the same condition
(:class:`config.observability.attention.AttentionListFilter`), so a
tile's count and the list its link opens always agree.

Models are imported inside the functions: this module is read by the admin
and the metrics view, and imports no app at load time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

# Failures that end a record (a run, a scan job, a delivery given up) stay in
# the attention counts this long; older ones are history, in the lists.
RECENT_FAILURES = timedelta(hours=24)


# The ledger's list shows business runs unless told otherwise (operations.admin.RunKindFilter).
ALL_RUNS = "kind=all"


@dataclass(frozen=True)
class Problem:
    key: str  # the changelist filter's value: ?attention=<key>
    label: str
    model: str  # "app_label.ModelName"
    condition: Callable[[datetime], Q]
    # More of the changelist's query string: a filter whose default would hide some rows.
    also: str = ""


def _pending_action_problems() -> list[Problem]:
    from approvals.choices import ActionStatus, FailureStage

    def failed(stage):
        return lambda now: Q(status=ActionStatus.FAILED, failure_stage=stage)

    return [
        Problem(
            "failed_submit",
            "Pending actions failed at submit",
            "approvals.PendingAction",
            failed(FailureStage.SUBMIT),
        ),
        Problem(
            "failed_execute",
            "Pending actions failed at execution",
            "approvals.PendingAction",
            failed(FailureStage.EXECUTE),
        ),
        Problem(
            "submit_unknown_overdue",
            "Submit outcome unknown past the grace period",
            "approvals.PendingAction",
            lambda now: Q(
                status=ActionStatus.SUBMIT_UNKNOWN,
                updated_at__lt=now - timedelta(seconds=settings.KNOX_SUBMIT_GRACE_SECONDS),
            ),
        ),
        Problem(
            "pending_overdue",
            "Pending at Knox too long",
            "approvals.PendingAction",
            lambda now: Q(
                status=ActionStatus.PENDING,
                created_at__lt=now - timedelta(seconds=settings.CONSOLE_KNOX_PENDING_MAX_AGE),
            ),
        ),
    ]


def _alert_problems() -> list[Problem]:
    from automation.choices import AlertStatus, Severity

    # Unacknowledged critical alerts first: the console shows problems in this order.
    return [
        Problem(
            f"active_{severity}",
            f"Unacknowledged {label.lower()} alerts",
            "automation.Alert",
            lambda now, severity=severity: Q(status=AlertStatus.ACTIVE, severity=severity),
        )
        for severity, label in reversed(Severity.choices)
    ]


def _delivery_problems() -> list[Problem]:
    from automation.choices import DeliveryStatus

    return [
        Problem(
            "failed_recent",
            "Deliveries failed (24 h)",
            "automation.NotificationDelivery",
            lambda now: Q(status=DeliveryStatus.FAILED, updated_at__gte=now - RECENT_FAILURES),
        ),
        Problem(
            "retrying",
            "Deliveries retrying",
            "automation.NotificationDelivery",
            lambda now: Q(status=DeliveryStatus.RETRYING),
        ),
    ]


def _scan_job_problems() -> list[Problem]:
    from scanning import conf
    from scanning.choices import ScanJobStatus

    return [
        Problem(
            "failed_recent",
            "Scan jobs failed (24 h)",
            "scanning.ScanJob",
            lambda now: Q(status=ScanJobStatus.FAILED, updated_at__gte=now - RECENT_FAILURES),
        ),
        Problem(
            "stalled",
            "Scan jobs stuck (no progress past the stall limit)",
            "scanning.ScanJob",
            # As the liveness check sees a stalled scan (scanning.services.liveness).
            lambda now: (
                Q(status=ScanJobStatus.SCANNING)
                & (
                    Q(last_progress_at__lt=now - conf.scan_stall_timeout())
                    | Q(
                        last_progress_at__isnull=True,
                        updated_at__lt=now - conf.scan_stall_timeout(),
                    )
                )
            ),
        ),
    ]


def _run_problems() -> list[Problem]:
    from operations.choices import RunOutcome, RunStatus

    def overdue(now):
        from operations.catalog import operation_catalog

        limits = [
            Q(type=op_type.key, started_at__lt=now - op_type.stale_running_after)
            for op_type in operation_catalog
        ]
        return Q(status=RunStatus.RUNNING) & reduce(or_, limits, Q(pk__in=[]))

    return [
        Problem(
            "failed_recent",
            "Runs failed (24 h)",
            "operations.OperationRun",
            lambda now: Q(outcome=RunOutcome.FAILED, completed_at__gte=now - RECENT_FAILURES),
            also=ALL_RUNS,
        ),
        Problem(
            "overdue",
            "Runs running past their limit",
            "operations.OperationRun",
            overdue,
            also=ALL_RUNS,
        ),
    ]


def attention_problems() -> list[Problem]:
    """Every problem, in the order the console shows them."""
    return [
        *_pending_action_problems(),
        *_alert_problems(),
        *_delivery_problems(),
        *_scan_job_problems(),
        *_run_problems(),
    ]


def problems_of(model_label: str) -> list[Problem]:
    return [p for p in attention_problems() if p.model == model_label]


def problem_counts(
    *, model_labels: Iterable[str], now: datetime | None = None
) -> dict[tuple[str, str], int]:
    """``{(model label, problem key): count}``: one query per model."""
    from django.apps import apps

    now = now or timezone.now()
    counts: dict[tuple[str, str], int] = {}
    for label in dict.fromkeys(model_labels):
        problems = problems_of(label)
        if not problems:
            continue
        conditions = {p.key: p.condition(now) for p in problems}
        # The OR lets the database use its status indexes instead of counting every row.
        rows = (
            apps.get_model(label)
            .objects.order_by()
            .filter(reduce(or_, conditions.values()))
            .aggregate(**{key: Count("pk", filter=q) for key, q in conditions.items()})
        )
        counts.update({(label, key): rows[key] for key in conditions})
    return counts


# --- single values, shared with /metrics --------------------------------------------------
def knox_last_successful_poll_at() -> datetime | None:
    from operations.choices import RunOutcome, RunStatus
    from operations.models import OperationRun

    # The newest run of one identity is also the last to complete (runs of
    # an identity never overlap), and its id is indexed.
    return (
        OperationRun.objects.filter(
            type="approvals.poll_knox",
            status=RunStatus.COMPLETED,
            outcome__in=(RunOutcome.SUCCEEDED, RunOutcome.PARTIALLY_SUCCEEDED),
        )
        .order_by("-pk")
        .values_list("completed_at", flat=True)
        .first()
    )


def outbox_backlog() -> dict:
    """``{"n": events not yet processed, "oldest": the oldest one's created_at}``."""
    from automation.models import AutomationEvent

    return AutomationEvent.objects.filter(status="pending").aggregate(
        n=Count("pk"), oldest=Min("created_at")
    )


def scan_agent_last_heartbeat() -> datetime | None:
    from scanning.models import ScanAgentStatus

    return ScanAgentStatus.objects.filter(pk=1).values_list("last_heartbeat", flat=True).first()


def task_results() -> dict:
    """django-q2's saved results: ``{"failed": failed tasks, "last": newest stop time}``."""
    from django_q.models import Task

    return Task.objects.order_by().aggregate(
        failed=Count("pk", filter=Q(success=False)), last=Max("stopped")
    )
