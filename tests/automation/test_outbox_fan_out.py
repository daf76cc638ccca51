"""The outbox at volume (issue 11): a backlog larger than one batch is shared
by several drain tasks, and a batch writes its executions, alerts,
recipients and idempotency records together — a few statements per batch,
not several per event."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from automation import tasks
from automation.engine import outbox_process
from automation.models import (
    Alert,
    AlertRecipient,
    AutomationEvent,
    AutomationExecution,
    IdempotencyRecord,
)
from tests.automation.factories import alert_action, make_rule, update_field_action
from tests.operations.factories import TenantFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


class StatementCounter:
    """Every statement the connection runs (not capped as the query log is)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.statements.append(sql)
        return execute(sql, params, many, context)


def _rename_all(tenants, prefix: str) -> None:
    """One transaction renaming every tenant, its events left pending (no worker ran)."""
    with transaction.atomic():
        for tenant in tenants:
            tenant.name = f"{prefix} {tenant.pk}"
            tenant.save()


def test_a_batch_costs_at_most_three_statements_per_event(settings, tenant_entity):
    # given: 200 pending events, each firing a rule that creates an alert for
    # two recipients and sets a field on the tenant's workspace
    settings.AUTOMATION_OUTBOX_BATCH_SIZE = 100
    users = UserFactory.create_batch(2)
    make_rule(
        name="alert and mark",
        actions=[
            alert_action(recipients={"users": [u.pk for u in users]}),
            update_field_action("workspace.name", "last: {{name}}", order=2),
        ],
    )
    workspaces = WorkspaceFactory.create_batch(5)
    tenants = [TenantFactory(workspace=workspaces[n % 5]) for n in range(200)]
    _rename_all(tenants, "renamed")
    assert AutomationEvent.objects.filter(status="pending").count() == 200

    # when: the worker drains them, every statement counted
    counter = StatementCounter()
    with connection.execute_wrapper(counter):
        counts = outbox_process()

    # then: all processed once, in at most 3 statements per event
    assert (counts["events"], counts["executions"]) == (200, 200)
    per_event = len(counter.statements) / 200
    assert per_event <= 3, f"{per_event:.2f} statements per event"
    assert AutomationExecution.objects.filter(status="success").count() == 200
    assert Alert.objects.count() == 200
    assert AlertRecipient.objects.count() == 400
    assert IdempotencyRecord.objects.count() == 400
    assert AutomationEvent.objects.filter(status="processed").count() == 200


def test_rows_written_with_the_batch_point_at_each_other(tenant_entity):
    # given: two events firing an alert rule
    make_rule(name="alert", actions=[alert_action()])
    tenants = TenantFactory.create_batch(2)
    _rename_all(tenants, "x")

    # when
    outbox_process()

    # then: each execution's recorded result names its own alert, and the
    # idempotency record holds the same result
    for execution in AutomationExecution.objects.all():
        [detail] = execution.actions_executed
        alert = Alert.objects.get(source_execution=execution)
        assert detail["result"]["alert_id"] == alert.pk
        assert alert.source_entity_id == execution.object_pk
        record = IdempotencyRecord.objects.get(execution=execution)
        assert record.result == detail["result"]
        assert record.idempotency_key.startswith(f"{execution.pk}:")


def test_a_failing_action_in_a_batch_leaves_the_other_events_whole(
    tenant_entity, workspace_slug_writable
):
    # given: a rule whose second action fails for one row (a duplicate slug)
    # and succeeds for the others
    taken = WorkspaceFactory(slug="taken")
    make_rule(
        name="alert then slug",
        actions=[
            alert_action(),
            update_field_action("workspace.slug", "{{name}}", order=2),
        ],
    )
    tenants = TenantFactory.create_batch(3)
    with transaction.atomic():
        for n, tenant in enumerate(tenants):
            tenant.name = taken.slug if n == 1 else f"free-{n}"
            tenant.save()

    # when
    counts = outbox_process()

    # then: the batch is redone event by event: two executions succeed, the
    # broken one is partial (its alert kept), each pair executed once
    assert counts["events"] == 3
    statuses = sorted(AutomationExecution.objects.values_list("status", flat=True))
    assert statuses == ["partial", "success", "success"]
    assert Alert.objects.count() == 3
    assert AutomationEvent.objects.filter(status="processed").count() == 3


def test_a_large_backlog_is_shared_by_helper_drain_tasks(settings, tenant_entity, monkeypatch):
    # given: 350 pending events, batches of 100, up to 4 drainers
    settings.AUTOMATION_OUTBOX_BATCH_SIZE = 100
    settings.AUTOMATION_OUTBOX_DRAINERS = 4
    make_rule(name="alert", actions=[alert_action()])
    _rename_all(TenantFactory.create_batch(350), "y")
    queued: list[tuple] = []
    real_async_task = tasks.async_task

    def recording_async_task(func, *args, **kwargs):  # a spy: the task still runs (sync mode)
        queued.append((func, args))
        return real_async_task(func, *args, **kwargs)

    monkeypatch.setattr(tasks, "async_task", recording_async_task)

    # when: the task queued on commit runs
    tasks.process_outbox_task()

    # then: it queued three helpers (which queue no more), and every event
    # was processed exactly once between them
    assert queued == [("automation.tasks.process_outbox_task", (False,))] * 3
    assert AutomationEvent.objects.filter(status="processed").count() == 350
    assert AutomationExecution.objects.count() == 350
    assert Alert.objects.count() == 350


def test_a_backlog_of_one_batch_queues_no_helper(settings, tenant_entity, monkeypatch):
    settings.AUTOMATION_OUTBOX_BATCH_SIZE = 100
    make_rule(name="alert", actions=[alert_action()])
    _rename_all(TenantFactory.create_batch(60), "z")
    queued: list = []
    monkeypatch.setattr(tasks, "async_task", lambda *a, **k: queued.append(a))

    counts = tasks.process_outbox_task()

    assert queued == []
    assert counts["events"] == 60


def test_an_alert_resolving_prior_ones_finds_those_of_its_own_batch(tenant_entity):
    # given: a rule whose alert resolves its earlier one for the same row, and
    # two renames of one tenant in one transaction (so in one batch)
    make_rule(name="renamed", actions=[alert_action(resolve_prior=True)])
    tenant = TenantFactory()
    with transaction.atomic():
        for name in ("one", "two"):
            tenant.name = name
            tenant.save()

    # when
    outbox_process()

    # then: the second alert resolved the first
    statuses = {a.title: a.status for a in Alert.objects.all()}
    assert statuses == {"Tenant one changed": "resolved", "Tenant two changed": "active"}
