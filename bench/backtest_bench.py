"""Benchmark: a rule backtest over 100,000 stored events.

100,000 ``on_update`` events of operations.Tenant are stored (bulk-inserted,
one in ten renamed to "Acme"), with an execution of a saved rule for each of
those; then ``rule_backtest`` reads the window with the rule "renamed to Acme"
(create_alert). Printed: seconds, events/s, SQL statements (counted with
``connection.execute_wrapper``), the Python memory peak of the backtest
(tracemalloc), and a baseline in the same run — reading the same columns of
the same rows in one streamed query (``.iterator()``), nothing evaluated —
with the ratio of the two.

    python bench/backtest_bench.py                       # SQLite, var/bench_backtest.sqlite3
    bash scripts/with-postgres.sh .venv/bin/python bench/backtest_bench.py

Not a test: it prints figures and always exits 0 unless something breaks.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import bootstrap  # noqa: E402 - bench/bootstrap.py: configures Django, migrates

bootstrap.setup(database="bench_backtest.sqlite3")

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from automation.entities import entities_sync  # noqa: E402
from automation.models import (  # noqa: E402
    AutomationEvent,
    AutomationExecution,
    AutomationRule,
    Entity,
    TriggerType,
)
from automation.services import Window, rule_backtest, rule_save  # noqa: E402


def clean() -> None:
    bootstrap.clear_automation_history()


def build(events: int) -> AutomationRule:
    entities_sync()
    user, _ = get_user_model().objects.get_or_create(
        username="bench-backtest", defaults={"email": "b@example.com"}
    )
    rule = rule_save(
        actor=user,
        name="renamed to Acme",
        entity=Entity.objects.get(model_label="operations.Tenant"),
        trigger_type=TriggerType.objects.get(name="on_update"),
        trigger_conditions={
            "field_conditions": [{"field_name": "name", "operator": "changed_to", "value": "Acme"}]
        },
        actions=[
            {
                "name": "alert",
                "action_type": "create_alert",
                "execution_order": 1,
                "action_config": {
                    "alert_type": "renamed",
                    "severity": "low",
                    "title": "Tenant {{name}} renamed",
                    "message": "Tenant {{id}} was {{old.name}}.",
                    "recipients": {"users": [user.pk]},
                },
            }
        ],
    )
    entity_id = rule.entity_id
    batch = 5000
    for start in range(0, events, batch):
        rows = []
        for i in range(start, min(start + batch, events)):
            name = "Acme" if i % 10 == 0 else f"Tenant {i}"
            rows.append(
                AutomationEvent(
                    entity_id=entity_id,
                    trigger="on_update",
                    object_pk=str(i % 5000 + 1),
                    new_values={"id": i % 5000 + 1, "name": name, "workspace_id": 1},
                    old_values={"id": i % 5000 + 1, "name": f"Old {i}", "workspace_id": 1},
                    changed_fields=["name"],
                    status="processed",
                )
            )
        with transaction.atomic():
            created = AutomationEvent.objects.bulk_create(rows)
            AutomationExecution.objects.bulk_create(
                AutomationExecution(
                    rule=rule,
                    rule_version=rule.version,
                    event=event,
                    entity_type="operations_tenant",
                    object_pk=event.object_pk,
                    status="success",
                )
                for event in created
                if event.new_values["name"] == "Acme"
            )
    return rule


def baseline(window: Window, entity_id: int) -> tuple[float, int]:
    started = time.perf_counter()
    rows = 0
    query = AutomationEvent.objects.filter(
        entity_id=entity_id,
        trigger="on_update",
        created_at__gte=window.since,
        created_at__lt=window.until,
    ).values_list("id", "object_pk", "new_values", "old_values", "created_at")
    for _row in query.iterator(chunk_size=2000):
        rows += 1
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    print(f"database: {bootstrap.describe_database()}")
    clean()
    started = time.perf_counter()
    rule = build(args.events)
    print(
        f"stored {args.events} events (+{args.events // 10} executions) in "
        f"{time.perf_counter() - started:.1f}s"
    )
    window = Window.of(days=1)

    best, best_base, statements = None, None, 0
    for _ in range(args.rounds):
        base_seconds, base_rows = baseline(window, rule.entity_id)
        counter = bootstrap.StatementCounter()
        t0 = time.perf_counter()
        with connection.execute_wrapper(counter):
            result = rule_backtest(actor=None, rule=rule, window=window)
        seconds = time.perf_counter() - t0
        statements = counter.count
        best = seconds if best is None else min(best, seconds)
        best_base = base_seconds if best_base is None else min(best_base, base_seconds)
        assert base_rows == args.events, base_rows
    # Memory in a round of its own: tracemalloc slows Python down several times.
    tracemalloc.start()
    rule_backtest(actor=None, rule=rule, window=window)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result["events_scanned"] == args.events
    assert result["matched"] == args.events // 10
    mine = result["actual"]["this_rule"]
    assert mine["executions"] == args.events // 10 and mine["matched_not_executed"] == 0
    print(
        f"backtest over {result['events_scanned']} events, {result['matched']} matched "
        f"(best of {args.rounds}):"
    )
    print(
        f"  rule_backtest      : {best:6.2f}s  ({args.events / best:,.0f} events/s), "
        f"{statements} SQL statements, Python memory peak {peak / 2**20:.1f} MiB"
    )
    print(f"  baseline (one streamed read of the same columns): {best_base:6.2f}s")
    print(f"  ratio              : {best / best_base:.2f}")
    clean()


if __name__ == "__main__":
    main()
