"""Run counters and duration histograms from the operation-run ledger,
without reading the whole ledger at every scrape.

The ledger only grows (about four runs a minute from the schedules alone),
so aggregating every completed run per scrape would cost more each day. But
a completed run never changes again, and ids only grow: every run with an id
below the oldest active run's, and old enough that no open transaction can
still be inserting it, is final. Each web process keeps the totals of that
settled prefix and, at each scrape, adds the runs that settled since (an id
range) and reads the unsettled tail fresh (the runs since the oldest active
one: minutes to hours of rows, bounded by reconcile). Every process computes
the same numbers from the same rows; a new process pays one full pass.

Four queries per scrape, always: active runs (also the active-runs gauge),
the settled boundary, the newly settled range, the unsettled tail.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Case, Count, FloatField, Func, IntegerField, Max, Min, Sum, Value, When
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone

# Upper bounds (seconds) of the run-duration buckets: a poll takes seconds, an
# assembly up to minutes, a reconcile or a big drain longer.
RUN_DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

# A run created longer ago than this is committed (no transaction that
# inserts a run stays open this long: tasks are killed after Q_TIMEOUT).
SETTLE_AFTER = timedelta(minutes=15)

_NOT_STARTED = -1  # completed without ever running (e.g. reconciled while queued)


class _ElapsedSeconds(Func):
    """``completed_at - started_at`` in seconds, as a float, with each
    database's native date arithmetic (Django's generic duration expression
    calls a Python function per row on SQLite). SQLite's julianday() is good
    to about 0.1 ms, which is plenty for these buckets."""

    output_field = FloatField()
    # date_part gives a double; EXTRACT gives numeric since PostgreSQL 14, several
    # times slower to compare fourteen times a row.
    template = "date_part('epoch', %(expressions)s)"
    arg_joiner = " - "

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
            **extra_context,
        )


@dataclass
class Totals:
    """Completed runs of one (type, outcome)."""

    total: int = 0
    timed: int = 0  # those that had started: the histogram's count
    seconds: float = 0.0
    per_bucket: list[int] = field(default_factory=lambda: [0] * len(RUN_DURATION_BUCKETS))

    def add(self, other: Totals) -> None:
        self.total += other.total
        self.timed += other.timed
        self.seconds += other.seconds
        self.per_bucket = [a + b for a, b in zip(self.per_bucket, other.per_bucket, strict=True)]

    def cumulative_buckets(self) -> list[tuple[str, int]]:
        running, buckets = 0, []
        for bound, count in zip(RUN_DURATION_BUCKETS, self.per_bucket, strict=True):
            running += count
            buckets.append((str(float(bound)), running))
        buckets.append(("+Inf", self.timed))
        return buckets


def _bucket_index():
    seconds = _ElapsedSeconds("completed_at", "started_at")
    return Case(
        When(started_at__isnull=True, then=Value(_NOT_STARTED)),
        *(
            When(LessThanOrEqual(seconds, float(bound)), then=Value(index))
            for index, bound in enumerate(RUN_DURATION_BUCKETS)
        ),
        default=Value(len(RUN_DURATION_BUCKETS)),  # longer than the last bound: +Inf only
        output_field=IntegerField(),
    )


def _aggregate(queryset) -> dict[tuple[str, str], Totals]:
    """One GROUP BY (type, outcome, bucket) over ``queryset``'s completed runs."""
    rows = (
        queryset.order_by()
        .annotate(bucket=_bucket_index())
        .values("type", "outcome", "bucket")
        .annotate(n=Count("pk"), seconds=Sum(_ElapsedSeconds("completed_at", "started_at")))
    )
    result: dict[tuple[str, str], Totals] = {}
    for row in rows:
        totals = result.setdefault((row["type"], row["outcome"]), Totals())
        totals.total += row["n"]
        if row["bucket"] == _NOT_STARTED:
            continue
        totals.timed += row["n"]
        totals.seconds += row["seconds"] or 0.0
        if row["bucket"] < len(RUN_DURATION_BUCKETS):
            totals.per_bucket[row["bucket"]] += row["n"]
    return result


def _merge(*parts: dict[tuple[str, str], Totals]) -> dict[tuple[str, str], Totals]:
    merged: dict[tuple[str, str], Totals] = {}
    for part in parts:
        for key, totals in part.items():
            merged.setdefault(key, Totals()).add(totals)
    return merged


class LedgerTotals:
    """The per-process cache of the settled prefix (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._upto = 0  # every completed run with id ≤ this is in _settled
        self._settled: dict[tuple[str, str], Totals] = {}

    def reset(self) -> None:
        with self._lock:
            self._upto = 0
            self._settled = {}

    def read(self) -> tuple[dict[tuple[str, str], Totals], dict[tuple[str, str], int]]:
        """``(totals by (type, outcome), active runs by (type, status))``."""
        from operations.choices import ACTIVE_STATUSES, RunStatus
        from operations.models import OperationRun

        runs = OperationRun.objects.order_by()
        active_rows = list(
            runs.filter(status__in=ACTIVE_STATUSES)
            .values("type", "status")
            .annotate(n=Count("pk"), first=Min("pk"))
        )
        active = {(row["type"], row["status"]): row["n"] for row in active_rows}
        oldest_active = min((row["first"] for row in active_rows), default=None)
        settled_max = runs.filter(created_at__lte=timezone.now() - SETTLE_AFTER).aggregate(
            m=Max("pk")
        )["m"]
        boundary = settled_max or 0
        if oldest_active is not None:
            boundary = min(boundary, oldest_active - 1)

        completed = runs.filter(status=RunStatus.COMPLETED)
        with self._lock:
            boundary = max(boundary, self._upto)  # never count a settled run twice
            newly_settled = _aggregate(completed.filter(pk__gt=self._upto, pk__lte=boundary))
            self._settled = _merge(self._settled, newly_settled)
            self._upto = boundary
            settled = self._settled
        tail = _aggregate(completed.filter(pk__gt=boundary))
        return _merge(settled, tail), active


ledger_totals = LedgerTotals()


def with_zeros(
    totals: dict[tuple[str, str], Totals], types: Iterable[str], outcomes: Iterable[str]
) -> dict[tuple[str, str], Totals]:
    """Registered types × final outcomes appear from the start, at zero, so
    ``rate()`` sees the first increase."""
    filled = dict(totals)
    for op_type in types:
        for outcome in outcomes:
            filled.setdefault((op_type, str(outcome)), Totals())
    return filled
