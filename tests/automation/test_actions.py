"""Actions: create_alert, update_field, templates and placeholders, ordering,
partial failure, and idempotent replays."""

import pytest
from django.core.management import CommandError, call_command

from automation.engine import outbox_process
from automation.models import (
    ActionTemplate,
    Alert,
    AutomationEvent,
    AutomationExecution,
    IdempotencyRecord,
)
from automation.services import rule_save
from tests.automation.factories import GroupFactory, alert_action, make_rule, update_field_action
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def _rename(tenant, name):
    tenant.name = name
    tenant.save()
    return outbox_process()


def test_create_alert_with_user_and_role_recipients_and_placeholders(tenant_entity):
    alice = UserFactory(username="alice")
    role = GroupFactory(name="on-call")
    rule = make_rule(
        name="renamed",
        actions=[
            alert_action(
                recipients={"users": ["alice"], "roles": ["on-call"]},
                context={"was": "{{old.name}}"},
            )
        ],
    )
    tenant = TenantFactory(name="Old")

    _rename(tenant, "New")

    alert = Alert.objects.get()
    assert alert.title == "Tenant New changed"
    assert alert.message == f"Tenant {tenant.pk} is now New (was Old)."
    assert alert.severity == "high" and alert.status == "active"
    assert alert.context == {"was": "Old"}
    assert (alert.source_entity_name, alert.source_entity_id, alert.source_rule) == (
        "operations_tenant",
        str(tenant.pk),
        rule,
    )
    recipients = {(r.recipient_type, r.user_id, r.group_id) for r in alert.recipients.all()}
    assert recipients == {("user", alice.pk, None), ("role", None, role.pk)}


def test_resolve_prior_resolves_the_rules_earlier_alert_for_the_same_row(tenant_entity):
    make_rule(name="renamed", actions=[alert_action(resolve_prior=True)])
    tenant, other = TenantFactory(), TenantFactory()
    _rename(tenant, "one")
    _rename(other, "other")

    _rename(tenant, "two")

    statuses = {a.title: a.status for a in Alert.objects.all()}
    assert statuses == {
        "Tenant one changed": "resolved",
        "Tenant other changed": "active",
        "Tenant two changed": "active",
    }


def test_update_field_sets_a_field_of_the_row_it_points_to(tenant_entity):
    make_rule(
        name="touch workspace", actions=[update_field_action("workspace.name", "WS of {{name}}")]
    )
    tenant = TenantFactory()

    _rename(tenant, "Acme")

    tenant.workspace.refresh_from_db()
    assert tenant.workspace.name == "WS of Acme"
    detail = AutomationExecution.objects.get().actions_executed[0]
    assert detail["result"]["model"] == "operations.Workspace"
    assert detail["result"]["new"] == "WS of Acme"


def test_update_field_type_checks_the_value_at_run_time(tenant_entity):
    # given: a value that only turns out wrong once the placeholder is filled
    # (a 250-character name does not fit the 200-character field)
    rule = make_rule(
        name="too long",
        actions=[alert_action(order=1), update_field_action("name", "{{name}}" * 2, order=2)],
    )
    tenant = TenantFactory()

    _rename(tenant, "x" * 125)

    execution = AutomationExecution.objects.get(rule=rule)
    assert execution.status == "partial"
    first, second = execution.actions_executed
    assert first["status"] == "success" and second["status"] == "failed"
    assert "not a valid value for name" in second["error"]
    assert "set name" in execution.error_message
    tenant.refresh_from_db()
    assert tenant.name == "x" * 125  # the failed action changed nothing
    assert execution.rule_version == rule.version


def test_actions_run_in_execution_order_and_stop_at_the_first_failure(
    tenant_entity, workspace_slug_writable
):
    rule = make_rule(
        name="ordered",
        actions=[
            update_field_action("name", "{{name}}-2", order=2),
            alert_action(order=3),
            update_field_action("workspace.slug", "not a slug!", order=1)
            | {"action_config": {"field": "workspace.slug", "value": "{{name}}"}},
        ],
    )
    _rename(TenantFactory(), "has spaces so not a slug")

    execution = AutomationExecution.objects.get(rule=rule)
    assert [a["execution_order"] for a in execution.actions_executed] == [1, 2, 3]
    assert [a["status"] for a in execution.actions_executed] == ["failed", "not_run", "not_run"]
    assert execution.status == "failed"
    assert not Alert.objects.exists()


def test_a_template_default_config_is_merged_under_the_actions_own(tenant_entity):
    template = ActionTemplate.objects.create(
        name="standard alert",
        action_type="create_alert",
        default_config={
            "alert_type": "standard",
            "severity": "low",
            "title": "Default title",
            "message": "Default message about {{name}}",
            "recipients": {"users": [UserFactory().pk]},
        },
        created_by=UserFactory(),
    )
    make_rule(
        name="templated",
        actions=[
            {
                "name": "from template",
                "action_type": "create_alert",
                "execution_order": 1,
                "template": template,
                "action_config": {"severity": "critical"},
            }
        ],
    )

    _rename(TenantFactory(), "T")

    alert = Alert.objects.get()
    assert (alert.alert_type, alert.severity, alert.title) == (
        "standard",
        "critical",
        "Default title",
    )
    assert alert.message == "Default message about T"


def test_replaying_an_event_repeats_no_side_effect_that_succeeded(
    tenant_entity, workspace_slug_writable
):
    # given: an execution whose second action failed (the workspace slug is taken)
    rule = make_rule(
        name="two steps",
        actions=[alert_action(order=1), update_field_action("workspace.slug", "{{name}}", order=2)],
    )
    TenantFactory(workspace__slug="taken")
    tenant = TenantFactory()
    _rename(tenant, "taken")
    execution = AutomationExecution.objects.get(rule=rule)
    assert execution.status == "partial"
    assert IdempotencyRecord.objects.count() == 1

    # when: the cause is fixed and the event replayed
    tenant.refresh_from_db()
    tenant.workspace.__class__.objects.filter(slug="taken").update(slug="was-taken")
    event = AutomationEvent.objects.get(trigger="on_update", object_pk=str(tenant.pk))
    call_command("automation_replay_event", str(event.pk), verbosity=0)

    # then: the same execution is finished; the alert was not created twice
    execution.refresh_from_db()
    assert execution.status == "success"
    assert AutomationExecution.objects.filter(rule=rule, event=event).count() == 1
    assert Alert.objects.count() == 1
    first, second = execution.actions_executed
    assert first["replayed"] is True and first["result"]["alert_id"] == Alert.objects.get().pk
    assert second["status"] == "success"
    tenant.workspace.refresh_from_db()
    assert tenant.workspace.slug == "taken"


def test_replaying_an_unknown_event_is_one_clear_line():
    with pytest.raises(CommandError, match="Event 999999 does not exist"):
        call_command("automation_replay_event", "999999")


def test_each_execution_records_the_rule_version_it_ran(tenant_entity):
    rule = make_rule(name="versioned", actions=[alert_action()])
    tenant = TenantFactory()
    _rename(tenant, "one")
    rule = rule_save(rule=rule, actor=rule.created_by, description="changed")
    _rename(tenant, "two")

    versions = list(
        AutomationExecution.objects.order_by("id").values_list("rule_version", flat=True)
    )
    assert versions == [1, 2]
