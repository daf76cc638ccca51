"""Benchmark: automation's cost on a save, and the worker's throughput.

(a) Saving a monitored model (operations.Tenant: automation's signal handlers
    are connected) while 200 active rules watch other entities or triggers,
    against the same saves with automation's handlers disconnected (an
    unmonitored model), in the same run, interleaved. Target: ≤ 1.3×.
(b) 1,000 committed events, each firing one rule with create_alert and
    update_field; the worker (outbox_process, batches of
    AUTOMATION_OUTBOX_BATCH_SIZE) drains them. Target: ≥ 200 executions/s on SQLite.

(c) --clusters 1,2,4: 5,000 events committed in one transaction (one rule:
    create_alert + update_field on the tenant's own workspace) are drained by
    1, 2 and 4 real ``qcluster`` processes of one worker each (the task queued
    on commit fans out to helper drain tasks); executions/s from the commit to
    the last event processed, with exactly-once counts, and the SQL statements
    per event of the same drain done in this process (counted with
    ``connection.execute_wrapper``). Targets (issue 11): ≥ 1,000 executions/s
    with 2 clusters, ≥ 1.6× the 1-cluster rate, ≤ 3 statements per event.
    Meant for PostgreSQL.

    python bench/automation_bench.py                       # SQLite, var/bench_automation.sqlite3
    DATABASE_URL=postgres://… python bench/automation_bench.py
    SECRET_KEY=bench bash scripts/with-postgres.sh .venv/bin/python bench/automation_bench.py
    bash scripts/with-postgres.sh .venv/bin/python bench/automation_bench.py --clusters 1,2,4

Not a test: it prints figures and always exits 0 unless something breaks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bootstrap  # noqa: E402 - bench/bootstrap.py: configures Django, migrates

bootstrap.setup(database="bench_automation.sqlite3")

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models.signals import post_delete, post_save, pre_save  # noqa: E402

from automation import events  # noqa: E402
from automation.engine import outbox_process  # noqa: E402
from automation.entities import entities_sync, invalidate_watch_index  # noqa: E402
from automation.models import (  # noqa: E402
    Alert,
    AutomationEvent,
    AutomationExecution,
    Entity,
    IdempotencyRecord,
    TriggerType,
)
from automation.services import rule_save  # noqa: E402
from operations.models import Tenant, Workspace  # noqa: E402


def clean() -> None:
    bootstrap.clear_automation_history()
    Tenant.objects.filter(workspace__slug__startswith="bench-").delete()
    Workspace.objects.filter(slug__startswith="bench-").delete()
    invalidate_watch_index()


def _signals(connect: bool) -> None:
    uid = "automation:operations.Tenant"
    if connect:
        events.connect_signals([Tenant])
    else:
        pre_save.disconnect(sender=Tenant, dispatch_uid=f"{uid}:pre_save")
        post_save.disconnect(sender=Tenant, dispatch_uid=f"{uid}:post_save")
        post_delete.disconnect(sender=Tenant, dispatch_uid=f"{uid}:post_delete")


def _saves(tenants, rounds: int, tag: str) -> float:
    started = time.perf_counter()
    for r in range(rounds):
        for tenant in tenants:
            tenant.name = f"{tag}-{r}-{tenant.pk}"
            tenant.save()
    return time.perf_counter() - started


def bench_save_overhead(actor, *, saves: int) -> tuple[float, float]:
    entities = {e.model_label: e for e in Entity.objects.all()}
    triggers = {t.name: t for t in TriggerType.objects.all()}
    # 200 active rules, none for (Tenant, on_update): 150 watch Workspace, 50 watch Tenant deletes.
    for n in range(200):
        on_workspace = n < 150
        rule_save(
            actor=actor,
            name=f"bench watcher {n}",
            entity=entities["operations.Workspace" if on_workspace else "operations.Tenant"],
            trigger_type=triggers["on_update" if on_workspace else "on_delete"],
            trigger_conditions={
                "field_conditions": [{"field_name": "name", "operator": "equals", "value": f"w{n}"}]
            },
        )
    workspace = Workspace.objects.create(name="Bench A", slug="bench-a")
    tenants = [Tenant.objects.create(workspace=workspace, name=f"t{n}") for n in range(100)]
    rounds = max(1, saves // len(tenants) // 4)
    monitored = unmonitored = 0.0
    _saves(tenants, 2, "warm")
    for block in range(4):  # interleaved, so drift hits both sides alike
        _signals(connect=False)
        unmonitored += _saves(tenants, rounds, f"u{block}")
        _signals(connect=True)
        monitored += _saves(tenants, rounds, f"m{block}")
    assert not AutomationEvent.objects.exists(), "no rule watches these saves"
    return monitored, unmonitored


def bench_worker(actor, *, n_events: int) -> tuple[float, int]:
    rule_save(
        actor=actor,
        name="bench firing rule",
        entity=Entity.objects.get(model_label="operations.Tenant"),
        trigger_type=TriggerType.objects.get(name="on_update"),
        trigger_conditions={
            "field_conditions": [{"field_name": "name", "operator": "contains", "value": "fire"}]
        },
        actions=[
            {
                "name": "alert",
                "action_type": "create_alert",
                "execution_order": 1,
                "action_config": {
                    "alert_type": "bench",
                    "title": "Tenant {{name}}",
                    "message": "{{id}} changed from {{old.name}}",
                    "recipients": {"users": [actor.pk]},
                },
            },
            {
                "name": "mark workspace",
                "action_type": "update_field",
                "execution_order": 2,
                "action_config": {"field": "workspace.name", "value": "last: {{name}}"},
            },
        ],
    )
    workspaces = [
        Workspace.objects.create(name=f"Bench W{n}", slug=f"bench-w{n}") for n in range(10)
    ]
    tenants = [
        Tenant.objects.create(workspace=workspaces[n % 10], name=f"bench {n}")
        for n in range(n_events)
    ]
    # The events are committed, one transaction per change, with no task queued:
    # the worker below drains them as the queued task or the drain schedule would.
    original = events.request_outbox_processing
    events.request_outbox_processing = lambda: None
    try:
        for tenant in tenants:
            tenant.name = f"fire {tenant.pk}"
            tenant.save()
    finally:
        events.request_outbox_processing = original
    assert AutomationEvent.objects.filter(status="pending").count() == n_events
    statements = bootstrap.StatementCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(statements):
        counts = outbox_process(max_batches=10**6)
    elapsed = time.perf_counter() - started
    assert counts["executions"] == n_events, counts
    assert AutomationExecution.objects.filter(status="success").count() == n_events
    return elapsed, counts["executions"], statements.count


def _fan_out_rule(actor) -> None:
    rule_save(
        actor=actor,
        name="bench fan-out rule",
        entity=Entity.objects.get(model_label="operations.Tenant"),
        trigger_type=TriggerType.objects.get(name="on_update"),
        trigger_conditions={
            "field_conditions": [{"field_name": "name", "operator": "contains", "value": "fire"}]
        },
        actions=[
            {
                "name": "alert",
                "action_type": "create_alert",
                "execution_order": 1,
                "action_config": {
                    "alert_type": "bench",
                    "title": "Tenant {{name}}",
                    "message": "{{id}} changed from {{old.name}}",
                    "recipients": {"users": [actor.pk]},
                },
            },
            {
                "name": "mark workspace",
                "action_type": "update_field",
                "execution_order": 2,
                "action_config": {"field": "workspace.name", "value": "last: {{name}}"},
            },
        ],
    )


def _fan_out_events(n_events: int, *, tag: str) -> None:
    """``n_events`` tenants (each in its own workspace, so concurrent drainers
    do not queue on the same rows), renamed in one transaction."""
    workspaces = Workspace.objects.bulk_create(
        [Workspace(name=f"Bench {tag}{n}", slug=f"bench-{tag}{n}") for n in range(n_events)]
    )
    tenants = Tenant.objects.bulk_create(
        [Tenant(workspace=w, name=f"bench {n}") for n, w in enumerate(workspaces)]
    )
    with transaction.atomic():
        for tenant in tenants:
            tenant.name = f"fire {tenant.pk}"
            tenant.save()


def _exactly_once(n_events: int) -> str:
    processed = AutomationEvent.objects.filter(status="processed").count()
    executions = AutomationExecution.objects.filter(status="success").count()
    distinct = AutomationExecution.objects.values("event").distinct().count()
    alerts = Alert.objects.count()
    records = IdempotencyRecord.objects.count()
    ok = processed == executions == distinct == alerts == n_events and records == 2 * n_events
    return (
        f"events processed {processed}, executions {executions} ({distinct} distinct events), "
        f"alerts {alerts}, idempotency records {records}: "
        + ("exactly once" if ok else "NOT exactly once")
    )


def _start_cluster(log: str) -> subprocess.Popen:
    env = {**os.environ, "Q_WORKERS": "1"}
    with open(log, "w") as output:
        return subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=bootstrap.ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop_cluster(process: subprocess.Popen) -> None:
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def bench_clusters(actor, *, n_events: int, cluster_counts: list[int]) -> list[str]:
    lines = []
    # Statements per event: the same drain, in this process.
    _fan_out_rule(actor)
    original = events.request_outbox_processing
    events.request_outbox_processing = lambda: None
    try:
        _fan_out_events(n_events, tag="s")
    finally:
        events.request_outbox_processing = original
    statements = bootstrap.StatementCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(statements):
        outbox_process(max_batches=10**6)
    in_process = n_events / (time.perf_counter() - started)
    per_event = statements.count / n_events
    lines.append(
        f"(c) {n_events} events committed in one transaction; one rule (create_alert + "
        "update_field)"
    )
    lines.append(
        f"    in this process: {in_process:6.0f} executions/s, {per_event:.2f} SQL statements "
        f"per event  target ≤ 3: {'met' if per_event <= 3 else 'NOT met'}"
    )
    lines.append(f"    {_exactly_once(n_events)}")
    rates: dict[int, float] = {}
    for count in cluster_counts:
        clean()
        _fan_out_rule(actor)
        logs = [tempfile.mkstemp(prefix=f"bench-cluster-{count}-{n}-")[1] for n in range(count)]
        clusters = [_start_cluster(log) for log in logs]
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not all(
                "running." in Path(log).read_text() for log in logs
            ):
                time.sleep(0.2)
            _fan_out_events(n_events, tag=f"c{count}-")  # its commit queues the drain
            started = time.perf_counter()
            while AutomationEvent.objects.filter(status="pending").exists():
                if time.perf_counter() - started > 600:
                    raise RuntimeError("the clusters did not drain the outbox in 10 minutes")
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
        finally:
            for process in clusters:
                _stop_cluster(process)
            for log in logs:
                os.unlink(log)
        rates[count] = n_events / elapsed
        lines.append(
            f"    {count} qcluster (1 worker each): {rates[count]:6.0f} executions/s "
            f"({elapsed:.2f}s)  {_exactly_once(n_events)}"
        )
    if 1 in rates and 2 in rates:
        speedup = rates[2] / rates[1]
        lines.append(
            f"    2 clusters: {rates[2]:.0f}/s  target ≥ 1000: "
            f"{'met' if rates[2] >= 1000 else 'NOT met'}; {speedup:.2f}× the 1-cluster rate  "
            f"target ≥ 1.6×: {'met' if speedup >= 1.6 else 'NOT met'}"
        )
    lines.append(f"    load average when done: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--saves", type=int, default=4000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument(
        "--clusters",
        default="",
        help="only (c): drain with this many qcluster processes, e.g. 1,2,4",
    )
    parser.add_argument("--fan-out-events", type=int, default=5000)
    args = parser.parse_args()
    if args.clusters:
        entities_sync()
        actor, _ = get_user_model().objects.get_or_create(username="bench")
        clean()
        try:
            counts = [int(n) for n in args.clusters.split(",")]
            lines = bench_clusters(actor, n_events=args.fan_out_events, cluster_counts=counts)
        finally:
            clean()
        print(f"database: {connection.vendor} ({connection.settings_dict['NAME']})")
        print("\n".join(lines))
        return

    entities_sync()
    actor, _ = get_user_model().objects.get_or_create(username="bench")
    clean()
    try:
        monitored, unmonitored = bench_save_overhead(actor, saves=args.saves)
        clean()
        worker_s, executions, statements = bench_worker(actor, n_events=args.events)
    finally:
        clean()

    vendor = f"{connection.vendor} {connection.Database.__name__}"
    print(f"database: {vendor} ({connection.settings_dict['NAME']})")
    ratio = monitored / unmonitored
    n = args.saves // 400 * 400
    print(f"(a) {n} saves with 200 active rules watching other entities/triggers")
    print(f"    monitored Tenant:   {n / monitored:8.0f} saves/s  ({monitored:.2f}s)")
    print(f"    unmonitored Tenant: {n / unmonitored:8.0f} saves/s  ({unmonitored:.2f}s)")
    print(f"    ratio: {ratio:.2f}  target ≤ 1.3: {'met' if ratio <= 1.3 else 'NOT met'}")
    rate = executions / worker_s
    print(f"(b) {executions} events → one rule each (create_alert + update_field)")
    print(
        f"    worker: {rate:8.0f} executions/s  ({worker_s:.2f}s)  target ≥ 200: {'met' if rate >= 200 else 'NOT met'}"
    )
    per_event = statements / executions
    print(
        f"    SQL statements per event: {per_event:.2f} ({statements} in all)  "
        f"target ≤ 3: {'met' if per_event <= 3 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
