"""Benchmark: the operation-run ledger against plain SQL.

5,000 runs are started, marked running and completed one after another
through Bureau's services (start_run → mark_run_running → complete_run),
then the same rows are inserted and updated twice with plain SQL on the same
connection. Both do three commits per run. Prints runs/s for each and the
ratio (target: ≤ 3).

    python bench/operations_bench.py                       # SQLite, var/bench.sqlite3
    DATABASE_URL=postgres://… python bench/operations_bench.py
    make bench                                             # both, PostgreSQL throwaway

Not a test: it prints figures and always exits 0 unless something breaks.
"""

from __future__ import annotations

import argparse
import json
import time

import bootstrap  # noqa: E402 - bench/bootstrap.py: configures Django, migrates

bootstrap.setup(database="bench.sqlite3")

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from operations.catalog import operation_catalog  # noqa: E402
from operations.choices import RunOutcome, RunScope  # noqa: E402
from operations.models import OperationRun, Workspace  # noqa: E402
from operations.services import complete_run, mark_run_running, start_run  # noqa: E402

BENCH_TYPE = "bench.ledger"


def bureau(workspace: Workspace, n: int, offset: int) -> float:
    started = time.perf_counter()
    for i in range(offset, offset + n):
        run, _ = start_run(type=BENCH_TYPE, workspace=workspace, inputs={"n": i})
        mark_run_running(run)
        complete_run(run, outcome=RunOutcome.SUCCEEDED, counts={"processed": 1})
    return time.perf_counter() - started


def plain_sql(workspace: Workspace, n: int, offset: int) -> float:
    table = OperationRun._meta.db_table
    insert = (
        f"INSERT INTO {table} (workspace_id, tenant_id, user_id, initiator_name, type, status, outcome,"
        " run_identity_hash, summary_counts, failure_summary, context, started_at, completed_at,"
        " created_at, updated_at) VALUES (%s, NULL, NULL, %s, %s, 'queued', 'pending', %s, %s, %s, %s,"
        " NULL, NULL, %s, %s) RETURNING id"
    )
    running = f"UPDATE {table} SET status = 'running', started_at = %s, updated_at = %s WHERE id = %s AND status = 'queued'"
    complete = (
        f"UPDATE {table} SET status = 'completed', outcome = 'succeeded', summary_counts = %s,"
        " failure_summary = %s, context = %s, completed_at = %s, updated_at = %s"
        " WHERE id = %s AND status IN ('queued', 'running')"
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for i in range(offset, offset + n):
            now = timezone.now()
            cursor.execute(
                insert,
                [
                    workspace.pk,
                    "system",
                    BENCH_TYPE,
                    f"{i:064x}",
                    "{}",
                    "[]",
                    json.dumps({"inputs": {"n": i}}),
                    now,
                    now,
                ],
            )
            run_id = cursor.fetchone()[0]
            now = timezone.now()
            cursor.execute(running, [now, now, run_id])
            now = timezone.now()
            cursor.execute(
                complete,
                [
                    json.dumps({"processed": 1}),
                    "[]",
                    json.dumps({"inputs": {"n": i}}),
                    now,
                    now,
                    run_id,
                ],
            )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5000)
    args = parser.parse_args()

    operation_catalog.register(
        BENCH_TYPE,
        label="Benchmark",
        scope=RunScope.WORKSPACE,
        summary_keys=("processed",),
        identity_inputs=("n",),
    )
    workspace, _ = Workspace.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
    OperationRun.objects.filter(workspace=workspace).delete()
    rounds = 10
    per_round = args.runs // rounds
    bureau_s = plain_s = 0.0
    try:
        bureau(workspace, 200, 10**9)  # warm up both paths and the connection
        plain_sql(workspace, 200, 2 * 10**9)
        # Interleaved rounds, alternating which goes first, so a change in the
        # machine's load during the run weighs on both sides alike.
        for r in range(rounds):
            offset = r * per_round
            if r % 2:
                plain_s += plain_sql(workspace, per_round, 10**8 + offset)
                bureau_s += bureau(workspace, per_round, offset)
            else:
                bureau_s += bureau(workspace, per_round, offset)
                plain_s += plain_sql(workspace, per_round, 10**8 + offset)
    finally:
        OperationRun.objects.filter(workspace=workspace).delete()
    args.runs = per_round * rounds

    vendor = f"{connection.vendor} {connection.Database.__name__}"
    print(f"database: {vendor} ({connection.settings_dict['NAME']})")
    print(f"runs: {args.runs} started → running → completed, one after another")
    print(f"bureau services: {args.runs / bureau_s:8.0f} runs/s  ({bureau_s:.2f}s)")
    print(f"plain SQL:       {args.runs / plain_s:8.0f} runs/s  ({plain_s:.2f}s)")
    ratio = bureau_s / plain_s
    print(
        f"ratio (bureau / plain SQL time): {ratio:.2f}  target ≤ 3: {'met' if ratio <= 3 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
