"""Concurrent workers on one outbox, with real threads and a connection each.
On PostgreSQL the sessions truly overlap (SKIP LOCKED claims, the unique
index on (event, rule) blocking the second insert); on SQLite they queue."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from automation import events
from automation.engine import RuleBook, event_run, outbox_process
from automation.entities import entities_sync
from automation.models import Alert, AutomationEvent, AutomationExecution, RuleDependency
from automation.services import rule_save
from tests.automation.factories import alert_action, make_rule
from tests.concurrency import run_concurrently
from tests.operations.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_rules(monkeypatch):
    # Events are left for the workers below: no processing is queued on commit.
    monkeypatch.setattr(events, "request_outbox_processing", lambda: None)
    entities_sync()
    return [
        make_rule(name="first", actions=[alert_action()]),
        make_rule(name="second", actions=[alert_action()]),
    ]


def test_two_workers_draining_one_outbox_execute_each_event_and_rule_exactly_once(two_rules):
    # given: 30 committed updates, nobody has processed them
    for n in range(30):
        tenant = TenantFactory()
        tenant.name = f"renamed {n}"
        tenant.save()
    assert AutomationEvent.objects.filter(status="pending").count() == 30

    # when: two workers drain concurrently, in small batches
    results, errors = run_concurrently(lambda: outbox_process(batch_size=3), n=2)

    # then
    assert errors == []
    assert sum(r.get("events", 0) for r in results) == 30
    assert AutomationEvent.objects.exclude(status="processed").count() == 0
    pairs = Counter(AutomationExecution.objects.values_list("event_id", "rule_id"))
    assert len(pairs) == 60 and set(pairs.values()) == {1}
    assert Alert.objects.count() == 60


def test_many_workers_running_the_same_event_make_one_execution_per_rule(two_rules):
    # given: one committed event; the claim is bypassed so every worker runs it
    tenant = TenantFactory()
    tenant.name = "raced"
    tenant.save()
    event_id = AutomationEvent.objects.get().pk

    def run_it():
        counts: Counter = Counter()
        with transaction.atomic():
            event = AutomationEvent.objects.select_related("entity").get(pk=event_id)
            event_run(event, RuleBook(), counts)
        return counts

    # when
    results, errors = run_concurrently(run_it, n=6)

    # then: the unique (event, rule) index let exactly one insert per rule win
    assert errors == []
    assert sum(r["executions"] for r in results) == 2
    assert sum(r["duplicates"] for r in results) == 10
    assert AutomationExecution.objects.count() == 2
    assert Alert.objects.count() == 2


def test_two_concurrent_edits_cannot_close_a_dependency_loop_together():
    # given: A → B → C → D with the middle link missing on both sides of a loop
    entities_sync()
    a, b, c, d = (make_rule(name=n) for n in "ABCD")
    rule_save(rule=b, actor=b.created_by, depends_on=[a])  # A → B
    rule_save(rule=d, actor=d.created_by, depends_on=[c])  # C → D
    edits = iter([(c, b), (a, d)])  # B → C and D → A would close A→B→C→D→A
    lock = threading.Lock()

    def edit():
        with lock:
            child, parent = next(edits)
        try:
            rule_save(rule=child, actor=child.created_by, depends_on=[parent])
        except ValidationError as error:
            return error.message_dict["depends_on"][0]
        return "ok"

    # when
    results, errors = run_concurrently(edit, n=2)

    # then: one edit won, the other saw it and was refused with the loop's path
    assert errors == []
    assert sorted(r[:16] for r in results) == ["Dependency cycle", "ok"]
    assert RuleDependency.objects.count() == 3


def test_a_console_save_waits_for_a_concurrent_edit_and_sees_its_loop(client):
    # given: A → B; an edit adding B → C is in flight (graph locked, not committed)
    from django.urls import reverse

    from automation.models import Entity, TriggerType
    from tests.operations.factories import UserFactory

    entities_sync()
    a, b, c = (make_rule(name=n) for n in "ABC")
    rule_save(rule=b, actor=b.created_by, depends_on=[a])
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    locked, release = threading.Event(), threading.Event()

    def service_edit():
        try:
            with transaction.atomic():
                rule_save(rule=c, actor=c.created_by, depends_on=[b])
                locked.set()
                release.wait(timeout=2)  # the console save starts meanwhile
        finally:
            locked.set()
            from django.db import connection

            connection.close()

    editor = threading.Thread(target=service_edit)
    editor.start()
    assert locked.wait(timeout=30)
    console: dict = {}

    def console_save():
        # when: an operator makes A run after C in the console (C → A closes A→B→C→A)
        try:
            console["response"] = client.post(
                reverse("admin:automation_automationrule_change", args=[a.pk]),
                {
                    "name": "A",
                    "description": "",
                    "entity": Entity.objects.get(model_label="operations.Tenant").pk,
                    "trigger_type": TriggerType.objects.get(name="on_update").pk,
                    "trigger_conditions": "{}",
                    "cron_expression": "",
                    "is_active": "on",
                    "actions-TOTAL_FORMS": "0",
                    "actions-INITIAL_FORMS": "0",
                    "parent_links-TOTAL_FORMS": "1",
                    "parent_links-INITIAL_FORMS": "0",
                    "parent_links-0-parent_rule": str(c.pk),
                },
            )
        finally:
            from django.db import connection

            connection.close()

    saver = threading.Thread(target=console_save)
    saver.start()
    saver.join(timeout=0.5)  # on PostgreSQL it waits on the graph lock here
    release.set()
    editor.join(timeout=30)
    saver.join(timeout=60)
    assert not editor.is_alive() and not saver.is_alive()

    # then: the console saw the committed edge and refused the loop
    response = console["response"]
    assert response.status_code == 200
    assert "Dependency cycle" in response.content.decode()
    assert RuleDependency.objects.count() == 2
