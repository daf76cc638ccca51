"""Benchmark: automation's cost on a save, and the worker's throughput.

(a) Saving a monitored model (operations.Tenant: automation's signal handlers
    are connected) while 200 active rules watch other entities or triggers,
    against the same saves with automation's handlers disconnected (an
    unmonitored model), in the same run, interleaved. Target: ≤ 1.3×.
(b) 1,000 committed events, each firing one rule with create_alert and
    update_field; the worker (outbox_process, batches of
    AUTOMATION_OUTBOX_BATCH_SIZE) drains them. Target: ≥ 200 executions/s on SQLite.

    python bench/automation_bench.py                       # SQLite, var/bench_automation.sqlite3
    DATABASE_URL=postgres://… python bench/automation_bench.py
    SECRET_KEY=bench bash scripts/with-postgres.sh .venv/bin/python bench/automation_bench.py

Not a test: it prints figures and always exits 0 unless something breaks.
"""

from __future__ import annotations

import argparse
import time

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
    AlertRecipient,
    AutomationEvent,
    AutomationExecution,
    AutomationRule,
    Entity,
    IdempotencyRecord,
    RuleAction,
    RuleDependency,
    TriggerType,
)
from automation.services import rule_save  # noqa: E402
from operations.models import Tenant, Workspace  # noqa: E402


class StatementCounter:
    """Counts every SQL statement the connection runs (``execute_wrapper``:
    not capped as Django's query log is, and on whatever DEBUG says)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def clean() -> None:
    with transaction.atomic():
        IdempotencyRecord.objects.all().delete()
        AlertRecipient.objects.all().delete()
        Alert.objects.all().delete()
        AutomationEvent.objects.update(caused_by=None)
        AutomationExecution.objects.all().delete()
        AutomationEvent.objects.all().delete()
        RuleAction.objects.all().delete()
        RuleDependency.objects.all().delete()
        AutomationRule.objects.all().delete()
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
    statements = StatementCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(statements):
        counts = outbox_process(max_batches=10**6)
    elapsed = time.perf_counter() - started
    assert counts["executions"] == n_events, counts
    assert AutomationExecution.objects.filter(status="success").count() == n_events
    return elapsed, counts["executions"], statements.count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--saves", type=int, default=4000)
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()

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
