"""Events: written with the change, processed after commit, never lost,
never run twice per rule, and stopped when rules keep re-triggering."""

import pytest
from django.db import transaction

from automation.engine import outbox_process
from automation.models import Alert, AutomationEvent, AutomationExecution, Entity
from automation.tasks import drain_outbox_task
from operations.models import OperationRun
from tests.automation.factories import alert_action, make_rule, update_field_action
from tests.operations.factories import TenantFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_create_update_and_delete_become_events_with_old_and_new_values(tenant_entity):
    for trigger in ("on_create", "on_update", "on_delete"):
        make_rule(name=trigger, trigger=trigger)
    workspace = WorkspaceFactory()

    tenant = TenantFactory(name="A", workspace=workspace)
    tenant.name = "B"
    tenant.save()
    pk = tenant.pk
    tenant.delete()

    created, updated, deleted = AutomationEvent.objects.order_by("id")
    assert (created.trigger, created.old_values, created.new_values["name"]) == (
        "on_create",
        None,
        "A",
    )
    assert updated.old_values["name"] == "A" and updated.new_values["name"] == "B"
    assert updated.changed_fields == ["name"]
    assert updated.new_values["workspace_id"] == workspace.pk
    assert (deleted.trigger, deleted.new_values, deleted.old_values["name"]) == (
        "on_delete",
        None,
        "B",
    )
    assert {e.object_pk for e in (created, updated, deleted)} == {str(pk)}


def test_a_model_no_rule_watches_writes_no_event(tenant_entity):
    make_rule(name="tenants only", trigger="on_update")

    workspace = WorkspaceFactory()
    workspace.name = "renamed"
    workspace.save()

    assert not AutomationEvent.objects.exists()


def test_a_rolled_back_change_leaves_no_event_and_runs_nothing(
    tenant_entity, django_capture_on_commit_callbacks
):
    make_rule(name="any update", actions=[alert_action()])
    tenant = TenantFactory(name="Before")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        tenant.name = "During"
        tenant.save()
        assert AutomationEvent.objects.count() == 1  # written with the change…
        raise RuntimeError("the change fails")

    assert AutomationEvent.objects.count() == 0  # …and gone with it
    assert callbacks == []  # no processing was queued
    assert not Alert.objects.exists()


def test_an_event_left_by_a_dead_worker_is_processed_by_the_drain(tenant_entity):
    # given: a change committed, but the worker that should process it never
    # ran (on-commit callbacks are not executed here: the process "died")
    make_rule(name="any update", actions=[alert_action()])
    tenant = TenantFactory(name="Before")
    tenant.name = "After"
    tenant.save()
    event = AutomationEvent.objects.get()
    assert event.status == "pending"

    # when: the drain schedule runs
    counts = drain_outbox_task()

    # then
    event.refresh_from_db()
    assert event.status == "processed"
    assert counts["events"] == 1 and counts["executions"] == 1
    assert Alert.objects.get().title == "Tenant After changed"
    run = OperationRun.objects.get(type="automation.drain_outbox")
    assert run.outcome == "succeeded"
    assert run.summary_counts["events"] == 1
    assert run.summary_counts["executions"] == 1


def test_each_event_and_rule_pair_executes_at_most_once(tenant_entity):
    rule = make_rule(name="any update", actions=[alert_action()])
    tenant = TenantFactory()
    tenant.name = "x"
    tenant.save()
    outbox_process()

    # a second worker finds the event pending again (say, a replay of the batch)
    AutomationEvent.objects.update(status="pending")
    counts = outbox_process()

    assert counts["duplicates"] == 1 and counts.get("executions", 0) == 0
    assert AutomationExecution.objects.filter(rule=rule).count() == 1
    assert Alert.objects.count() == 1


def test_processing_runs_after_commit_through_the_queued_task(
    tenant_entity, django_capture_on_commit_callbacks
):
    make_rule(name="any update", actions=[alert_action()])
    tenant = TenantFactory()

    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        for n in range(3):
            tenant.name = f"n{n}"
            tenant.save()
        assert not Alert.objects.exists()  # nothing runs before the commit

    assert len(callbacks) == 1  # one task for the transaction, not one per event
    assert Alert.objects.count() == 3
    assert set(AutomationEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_an_event_after_a_rolled_back_savepoint_still_queues_processing(
    tenant_entity, django_capture_on_commit_callbacks
):
    # given: the first event of a transaction rolled back with its savepoint
    make_rule(name="any update", actions=[alert_action()])
    tenant = TenantFactory()

    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            tenant.name = "undone"
            tenant.save()
            raise RuntimeError("roll the savepoint back")
        # when: the transaction writes another event
        tenant.name = "kept"
        tenant.save()

    # then: its commit queues the processing (once) and the kept change ran
    assert len(callbacks) == 1
    assert list(Alert.objects.values_list("title", flat=True)) == ["Tenant kept changed"]


@pytest.mark.django_db(transaction=True)
def test_a_transaction_after_a_rolled_back_one_queues_processing_again(tenant_entity):
    # given: a transaction that wrote an event and rolled back
    make_rule(name="any update", actions=[alert_action()])
    tenant = TenantFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        tenant.name = "undone"
        tenant.save()
        raise RuntimeError("roll it back")

    # when: the next transaction writes one and commits
    with transaction.atomic():
        tenant.name = "kept"
        tenant.save()

    # then: the queued task (run inline here) processed it
    assert list(Alert.objects.values_list("title", flat=True)) == ["Tenant kept changed"]
    assert not AutomationEvent.objects.filter(status="pending").exists()


def test_the_chain_guard_stops_a_rule_that_keeps_retriggering_itself(settings, tenant_entity):
    # given: a rule that renames the tenant on every update of it
    settings.AUTOMATION_MAX_CHAIN_DEPTH = 3
    rule = make_rule(name="loop", actions=[update_field_action("name", "{{name}}+")])
    tenant = TenantFactory(name="t")

    # when: one update by a person
    tenant.name = "t0"
    tenant.save()
    outbox_process()

    # then: depth 0..3 ran, depth 4 was recorded as skipped with the reason
    executions = list(AutomationExecution.objects.filter(rule=rule).order_by("depth"))
    assert [e.depth for e in executions] == [0, 1, 2, 3, 4]
    assert [e.status for e in executions[:4]] == ["success"] * 4
    stopped = executions[-1]
    assert stopped.status == "skipped"
    assert (
        "Chain guard" in stopped.error_message
        and "AUTOMATION_MAX_CHAIN_DEPTH 3" in stopped.error_message
    )
    assert "'loop'" in stopped.error_message
    tenant.refresh_from_db()
    assert tenant.name == "t0++++"
    assert AutomationEvent.objects.filter(status="pending").count() == 0


def test_a_broken_event_does_not_hold_up_the_rest_of_its_batch(settings, tenant_entity):
    # given: two good events around one whose model no longer exists
    settings.AUTOMATION_EVENT_MAX_ATTEMPTS = 2
    make_rule(name="any update", actions=[alert_action()])
    first, last = TenantFactory(), TenantFactory()
    first.name = "first"
    first.save()
    gone = Entity.objects.create(
        name="gone_table", model_label="gone.Model", entity_type=tenant_entity.entity_type
    )
    broken = AutomationEvent.objects.create(entity=gone, trigger="on_update", object_pk="1")
    last.name = "last"
    last.save()

    # when
    counts = outbox_process()

    # then: the good ones ran; the broken one was tried, recorded, and failed for good
    assert counts["events"] == 2 and counts["events_failed"] == 1
    assert sorted(Alert.objects.values_list("title", flat=True)) == [
        "Tenant first changed",
        "Tenant last changed",
    ]
    broken.refresh_from_db()
    assert (broken.status, broken.attempts) == ("failed", 2)
    assert "gone.Model" in broken.note
