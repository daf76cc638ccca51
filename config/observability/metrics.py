"""``GET /metrics``: Bureau's state in the Prometheus text format.

Everything about the business is read from the database when Prometheus
scrapes, by :class:`BureauCollector`, with a fixed set of fourteen aggregate
queries whatever the table sizes, so any web process on any machine gives
the same answer and nothing is lost when a process restarts.

Operation runs complete in qcluster workers on any machine, while
``/metrics`` is served by the web processes: a counter or histogram observed
in ``tracked_run`` would live in the worker's memory, invisible to the
scrape and gone on restart. So the run counters and duration histograms are
built from the ledger itself (completed runs, ``completed_at - started_at``):
monotonic as long as the ledger is kept, identical from every web process,
and incremental so a scrape does not reread a growing ledger
(:mod:`config.observability.ledger_totals`).
These series are global: scrape them through one target, or aggregate them
with ``max``, never ``sum``, across instances. HTTP request metrics are the
opposite: per web server (see :mod:`config.observability.http_metrics`).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min, Q
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from config.observability import http_metrics, selectors
from config.observability.ledger_totals import ledger_totals, with_zeros

logger = logging.getLogger(__name__)

# The classic Prometheus text format, which every Prometheus reads (newer
# prometheus_client versions label the same text "version=1.0.0").
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max((now - then).total_seconds(), 0.0)


def _counts_by(queryset, *fields: str) -> dict[tuple, int]:
    rows = queryset.order_by().values(*fields).annotate(n=Count("pk"))
    return {tuple(row[f] for f in fields): row["n"] for row in rows}


class BureauCollector:
    """Collects Bureau's gauges and ledger counters at scrape time: fourteen
    queries whatever the size of the tables."""

    def collect(self):
        now = timezone.now()
        yield from self._pending_actions(now)
        yield from self._knox(now)
        yield from self._automation(now)
        yield from self._scanning(now)
        yield from self._runs()
        yield from self._task_queue(now)

    # --- approvals ----------------------------------------------------------------------
    def _pending_actions(self, now):
        from approvals.choices import IN_FLIGHT, ActionStatus
        from approvals.models import PendingAction

        by_status = GaugeMetricFamily(
            "bureau_pending_actions", "Pending actions by status.", labels=["status"]
        )
        counts = _counts_by(PendingAction.objects.all(), "status")
        for status in ActionStatus.values:
            by_status.add_metric([status], counts.get((status,), 0))
        yield by_status

        oldest = PendingAction.objects.filter(status__in=IN_FLIGHT).aggregate(
            oldest=Min("created_at")
        )["oldest"]
        age = GaugeMetricFamily(
            "bureau_pending_action_oldest_in_flight_age_seconds",
            "Age of the oldest pending action still waiting for Knox "
            "(pending or submit_unknown); 0 when none is.",
        )
        age.add_metric([], _age(now, oldest) or 0.0)
        yield age

    def _knox(self, now):
        last = selectors.knox_last_successful_poll_at()
        family = GaugeMetricFamily(
            "bureau_knox_last_successful_poll_age_seconds",
            "Seconds since the last Knox poll that completed succeeded or partially "
            "succeeded; absent until there has been one.",
        )
        if last is not None:
            family.add_metric([], _age(now, last))
        yield family

    # --- automation ----------------------------------------------------------------------
    def _automation(self, now):
        from automation.choices import AlertStatus, DeliveryChannel, DeliveryStatus, Severity
        from automation.models import Alert, NotificationDelivery

        backlog = selectors.outbox_backlog()
        pending = GaugeMetricFamily(
            "bureau_automation_outbox_pending_events", "Outbox events not yet processed."
        )
        pending.add_metric([], backlog["n"])
        yield pending
        age = GaugeMetricFamily(
            "bureau_automation_outbox_oldest_pending_age_seconds",
            "Age of the oldest unprocessed outbox event; 0 when the outbox is empty.",
        )
        age.add_metric([], _age(now, backlog["oldest"]) or 0.0)
        yield age

        deliveries = GaugeMetricFamily(
            "bureau_notification_deliveries",
            "Notification deliveries by channel and status.",
            labels=["channel", "status"],
        )
        counts = _counts_by(NotificationDelivery.objects.all(), "channel", "status")
        for channel in DeliveryChannel.values:
            for status in DeliveryStatus.values:
                deliveries.add_metric([channel, status], counts.get((channel, status), 0))
        yield deliveries

        alerts = GaugeMetricFamily(
            "bureau_active_alerts", "Alerts still active, by severity.", labels=["severity"]
        )
        counts = _counts_by(Alert.objects.filter(status=AlertStatus.ACTIVE), "severity")
        for severity in Severity.values:
            alerts.add_metric([severity], counts.get((severity,), 0))
        yield alerts

    # --- scanning ------------------------------------------------------------------------
    def _scanning(self, now):
        from scanning.choices import ScanJobStatus
        from scanning.models import ScanJob

        jobs = GaugeMetricFamily("bureau_scan_jobs", "Scan jobs by state.", labels=["state"])
        counts = _counts_by(ScanJob.objects.all(), "status")
        for status in ScanJobStatus.values:
            jobs.add_metric([status], counts.get((status,), 0))
        yield jobs

        heartbeat = selectors.scan_agent_last_heartbeat()
        family = GaugeMetricFamily(
            "bureau_scan_agent_heartbeat_age_seconds",
            "Seconds since the scan agent's last heartbeat; absent until it has sent one.",
        )
        if heartbeat is not None:
            family.add_metric([], _age(now, heartbeat))
        yield family

    # --- the operation-run ledger --------------------------------------------------------
    def _runs(self):
        from operations.catalog import operation_catalog
        from operations.choices import TERMINAL_OUTCOMES

        totals, active_counts = ledger_totals.read()
        totals = with_zeros(totals, (t.key for t in operation_catalog), TERMINAL_OUTCOMES)
        completed = CounterMetricFamily(
            "bureau_operation_runs_completed",
            "Operation runs completed, by type and outcome (from the ledger).",
            labels=["type", "outcome"],
        )
        durations = HistogramMetricFamily(
            "bureau_operation_run_duration_seconds",
            "Duration of completed operation runs, started to completed (from the ledger; "
            "runs completed without starting are counted in the counter only).",
            labels=["type", "outcome"],
        )
        for (op_type, outcome), row in sorted(totals.items()):
            completed.add_metric([op_type, outcome], row.total)
            durations.add_metric([op_type, outcome], row.cumulative_buckets(), row.seconds)
        yield completed
        yield durations

        active = GaugeMetricFamily(
            "bureau_operation_runs_active",
            "Operation runs queued or running, by type and status.",
            labels=["type", "status"],
        )
        for (op_type, status), count in sorted(active_counts.items()):
            active.add_metric([op_type, status], count)
        yield active

    # --- django-q2 -----------------------------------------------------------------------
    def _task_queue(self, now):
        from django_q.models import OrmQ

        queue = OrmQ.objects.order_by().aggregate(
            waiting=Count("pk", filter=Q(lock__lte=now)),
            taken=Count("pk", filter=Q(lock__gt=now)),
        )
        family = GaugeMetricFamily(
            "bureau_task_queue",
            "django-q2 tasks in the ORM broker's queue: waiting for a worker, or taken "
            "by one (until acknowledged, or handed out again after Q_RETRY).",
            labels=["state"],
        )
        family.add_metric(["waiting"], queue["waiting"])
        family.add_metric(["taken"], queue["taken"])
        yield family

        tasks = selectors.task_results()
        failed = GaugeMetricFamily(
            "bureau_task_failures", "django-q2 failed tasks kept in the database."
        )
        failed.add_metric([], tasks["failed"])
        yield failed
        last = GaugeMetricFamily(
            "bureau_task_last_finished_age_seconds",
            "Seconds since any django-q2 cluster last finished a task (what /readyz "
            "checks); absent when no task was ever recorded.",
        )
        if tasks["last"] is not None:
            last.add_metric([], _age(now, tasks["last"]))
        yield last


# --- the view -------------------------------------------------------------------------------
def _networks():
    networks = []
    for entry in settings.METRICS_ALLOWED_IPS:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # reported by the system check (observability.E001)
    return networks


def metrics_enabled() -> bool:
    return bool(settings.METRICS_TOKEN or settings.METRICS_ALLOWED_IPS)


def scrape_allowed(request) -> bool:
    """A bearer token equal to ``METRICS_TOKEN``, or a peer address inside
    ``METRICS_ALLOWED_IPS``. The address is the TCP peer (REMOTE_ADDR), never
    X-Forwarded-For, which any client can write."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return True
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(peer in network for network in _networks())


def render_metrics() -> bytes:
    registry = CollectorRegistry()
    registry.register(BureauCollector())
    http_metrics.collectors_into(registry)
    return generate_latest(registry)


@never_cache
@require_GET
def metrics_view(request):
    """404 while neither a token nor an allowlist is configured (the endpoint
    is off, and says nothing); 403 for a caller that has neither."""
    if not metrics_enabled():
        raise Http404
    if not scrape_allowed(request):
        return HttpResponseForbidden("metrics: not allowed\n", content_type="text/plain")
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE)
