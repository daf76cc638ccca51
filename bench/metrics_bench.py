"""Benchmark: what a /metrics scrape (and the console's "Needs attention"
tiles, which share its queries) costs as the tables grow.

The collector runs a fixed set of aggregate queries; their cost still grows
with the rows they aggregate (the ledger above all: the run counters and
duration histograms cover every completed run, read incrementally: a
process's first scrape reads the whole ledger, later ones only what settled
since and the unsettled tail). This fills the ledger, pending actions,
deliveries and scan jobs in steps and times ``render_metrics()`` at each
size: a process's first scrape, and the best of --repeat after it.

    python bench/metrics_bench.py                       # SQLite, var/bench.sqlite3
    DATABASE_URL=postgres://… python bench/metrics_bench.py

Not a test: it prints figures and exits 0 unless something breaks.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import bootstrap  # noqa: E402 - bench/bootstrap.py: configures Django, migrates

bootstrap.setup(database="bench.sqlite3")

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from approvals.models import ApprovalLog, PendingAction  # noqa: E402
from automation.models import NotificationDelivery  # noqa: E402
from config.observability.attention import attention  # noqa: E402
from config.observability.ledger_totals import ledger_totals  # noqa: E402
from config.observability.metrics import render_metrics  # noqa: E402
from operations.models import OperationRun, Workspace  # noqa: E402
from scanning.models import ScanJob  # noqa: E402

TYPES = ("approvals.poll_knox", "scanning.check_agent", "automation.drain_outbox", "bench.other")
OUTCOMES = ("succeeded", "succeeded", "succeeded", "partially_succeeded", "failed")


def _add_rows(workspace: Workspace, start: int, count: int) -> None:
    now = timezone.now()
    runs = []
    for i in range(start, start + count):
        completed = now - timedelta(seconds=i)
        runs.append(
            OperationRun(
                workspace=workspace,
                type=TYPES[i % len(TYPES)],
                status="completed",
                outcome=OUTCOMES[i % len(OUTCOMES)],
                run_identity_hash=f"bench-metrics-{i:050d}",
                initiator_name="bench",
                started_at=completed - timedelta(milliseconds=37 * (i % 500)),
                completed_at=completed,
            )
        )
    OperationRun.objects.bulk_create(runs, batch_size=2000)
    # Runs from earlier days (auto_now_add ignores a given created_at).
    OperationRun.objects.filter(initiator_name="bench", created_at__gte=now).update(
        created_at=now - timedelta(days=1)
    )
    # a tenth as many of the others
    small = range(start // 10, (start + count) // 10)
    logs = ApprovalLog.objects.bulk_create(
        [
            ApprovalLog(ap_inf_id=f"bm{i:030d}", subject="b", contents="", contents_sha256="0")
            for i in small
        ],
        batch_size=2000,
    )
    PendingAction.objects.bulk_create(
        [
            PendingAction(
                ap_inf_id=log.ap_inf_id,
                approval_log=log,
                action_type="bench",
                action_payload={},
                status="rejected" if i % 3 else "pending",
            )
            for i, log in enumerate(logs)
        ],
        batch_size=2000,
    )
    NotificationDelivery.objects.bulk_create(
        [NotificationDelivery(recipient=str(i), channel="email", status="sent") for i in small],
        batch_size=2000,
    )
    ScanJob.objects.bulk_create(
        [ScanJob(title="b", settings={}, status="committed") for _ in small], batch_size=2000
    )


class _Operator:
    """Sees every tile of the console's "Needs attention"."""

    def has_perm(self, perm: str) -> bool:
        return True


def _time_attention(repeat: int) -> tuple[float, int]:
    best = float("inf")
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            attention(user=_Operator())
            best = min(best, time.perf_counter() - started)
    return best, len(queries)


def _clear() -> None:
    OperationRun.objects.filter(initiator_name="bench").delete()
    PendingAction.objects.filter(action_type="bench").delete()
    ApprovalLog.objects.filter(ap_inf_id__startswith="bm").delete()
    NotificationDelivery.objects.filter(recipient__regex=r"^[0-9]+$").delete()
    ScanJob.objects.filter(title="b").delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,10000,100000,300000", help="completed runs")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    workspace, _ = Workspace.objects.get_or_create(slug="bench-metrics", defaults={"name": "B"})
    _clear()
    print(f"metrics scrape on {connection.vendor}, best of {args.repeat}")
    have = 0
    for size in (int(s) for s in args.sizes.split(",")):
        _add_rows(workspace, have, size - have)
        have = size
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        ledger_totals.reset()  # a new web process
        started = time.perf_counter()
        render_metrics()
        first = time.perf_counter() - started
        best = float("inf")
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                body = render_metrics()
                best = min(best, time.perf_counter() - started)
        print(
            f"  {size:>8,} runs (+{size // 10:,} actions, deliveries, jobs): first scrape "
            f"{first * 1000:8.1f} ms, then {best * 1000:6.1f} ms; {len(queries)} queries, "
            f"{len(body) / 1024:.0f} KiB"
        )
        # The admin index's tiles read the same tables (config.observability.selectors).
        tiles, tile_queries = _time_attention(args.repeat)
        print(
            f"{'':12}console's needs-attention tiles {tiles * 1000:6.1f} ms; {tile_queries} queries"
        )
    _clear()


if __name__ == "__main__":
    main()
