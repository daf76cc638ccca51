"""The operator console: rules with inline actions and dependencies, the
dry-run page, read-only executions, delivery retry, alert bulk actions."""

import pytest
from django.urls import reverse

from automation.engine import outbox_process
from automation.models import (
    Alert,
    AutomationExecution,
    AutomationRule,
    NotificationDelivery,
    TriggerType,
)
from tests.automation.factories import AlertFactory, alert_action, make_rule
from tests.automation.factories import admin_rule_form as _rule_form
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_an_operator_creates_a_rule_with_an_action_and_it_fires(admin_client, root, tenant_entity):
    response = admin_client.post(reverse("admin:automation_automationrule_add"), _rule_form())

    assert response.status_code == 302, (
        response.context["adminform"].form.errors if response.context else ""
    )
    rule = AutomationRule.objects.get()
    assert (rule.created_by, rule.updated_by, rule.entity_type.name) == (root, root, "table")
    assert rule.actions.get().action_type == "create_alert"

    tenant = TenantFactory(name="Old")
    tenant.name = "Acme"
    tenant.save()
    outbox_process()
    assert Alert.objects.get().title == "Acme"


def test_the_console_refuses_an_unknown_operator_and_a_bad_action(admin_client, tenant_entity):
    response = admin_client.post(
        reverse("admin:automation_automationrule_add"),
        _rule_form(
            trigger_conditions='{"field_conditions": [{"field_name": "name", "operator": "resembles", "value": 1}]}',
            **{
                "actions-0-action_config": '{"alert_type": "x", "title": "t", "message": "m", "recipients": {"users": ["ghost"]}}'
            },
        ),
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "unknown operator &#x27;resembles&#x27;" in page
    assert "no such user(s): ghost" in page
    assert not AutomationRule.objects.exists()


def test_the_console_refuses_a_dependency_cycle(admin_client, tenant_entity):
    a = make_rule(name="A")
    b = make_rule(name="B", depends_on=[a])
    url = reverse("admin:automation_automationrule_change", args=[a.pk])

    response = admin_client.post(
        url,
        _rule_form(
            name="A",
            trigger_conditions="{}",
            **{
                "actions-TOTAL_FORMS": "0",
                "parent_links-TOTAL_FORMS": "1",
                "parent_links-0-parent_rule": str(b.pk),
            },
        ),
    )

    assert response.status_code == 200
    assert "Dependency cycle: B" in response.content.decode()
    assert not a.parent_links.exists()


def test_the_dry_run_page_shows_the_result(admin_client, tenant_entity):
    rule = make_rule(
        name="dry",
        conditions=[{"field_name": "name", "operator": "changed_to", "value": "Acme"}],
        actions=[alert_action()],
    )
    tenant = TenantFactory(name="Old")
    url = reverse("admin:automation_automationrule_dry_run", args=[rule.pk])

    page = admin_client.get(url)
    result = admin_client.post(url, {"object_id": str(tenant.pk), "changes": '{"name": "Acme"}'})

    assert page.status_code == 200
    assert result.status_code == 200
    assert result.context["result"]["matched"] is True
    assert "The conditions match" in result.content.decode()
    assert not AutomationExecution.objects.exists() and not Alert.objects.exists()


def test_the_dry_run_page_shows_values_in_words_not_python_reprs(admin_client, tenant_entity):
    # given: a rule whose conditions compare with a list and with nothing
    rule = make_rule(
        name="dry words",
        conditions=[
            {"field_name": "name", "operator": "in", "value": ["Acme", "Globex"]},
            {"field_name": "name", "operator": "is_not_null"},
        ],
        actions=[alert_action()],
    )
    tenant = TenantFactory(name="Acme")
    url = reverse("admin:automation_automationrule_dry_run", args=[rule.pk])

    # when
    result = admin_client.post(url, {"object_id": str(tenant.pk), "changes": "{}"})

    # then: the list reads as words, and an absent value as a dash
    content = result.content.decode()
    assert result.status_code == 200
    assert "<td>Acme, Globex</td>" in content
    assert "[&#x27;Acme&#x27;" not in content and "<td>None</td>" not in content


def test_execution_pages_are_read_only(admin_client, tenant_entity):
    make_rule(name="r", actions=[alert_action()])
    tenant = TenantFactory()
    tenant.name = "x"
    tenant.save()
    outbox_process()
    execution = AutomationExecution.objects.get()

    listing = admin_client.get(reverse("admin:automation_automationexecution_changelist"))
    detail = admin_client.get(
        reverse("admin:automation_automationexecution_change", args=[execution.pk])
    )

    assert listing.status_code == 200 and detail.status_code == 200
    assert "alert_id" in detail.content.decode()  # the per-action detail
    assert (
        admin_client.post(
            reverse("admin:automation_automationexecution_delete", args=[execution.pk])
        ).status_code
        == 403
    )


def test_the_delivery_retry_action(admin_client, tenant_entity):
    recipient = UserFactory()
    delivery = NotificationDelivery.objects.create(
        recipient=str(recipient.pk),
        recipient_user=recipient,
        channel="in_app",
        status="failed",
        attempts=5,
        max_attempts=5,
        payload={"subject": "s", "message": "m"},
    )

    response = admin_client.post(
        reverse("admin:automation_notificationdelivery_changelist"),
        {"action": "retry", "_selected_action": [delivery.pk]},
        follow=True,
    )

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 6)


def test_alert_bulk_acknowledge_and_dismiss(admin_client, root):
    first, second, resolved = AlertFactory(), AlertFactory(), AlertFactory(status="resolved")
    url = reverse("admin:automation_alert_changelist")

    admin_client.post(url, {"action": "acknowledge", "_selected_action": [first.pk]})
    response = admin_client.post(
        url, {"action": "dismiss", "_selected_action": [second.pk, resolved.pk]}, follow=True
    )

    statuses = dict(Alert.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "acknowledged", second.pk: "dismissed", resolved.pk: "resolved"}
    assert "is resolved; it cannot become dismissed" in response.content.decode()
    assert first.acknowledgements.get().acknowledged_by == root


@pytest.mark.parametrize(
    "name",
    [
        "automationrule",
        "automationevent",
        "entity",
        "actiontemplate",
        "alert",
        "notificationdelivery",
        "triggertype",
    ],
)
def test_every_list_page_loads(admin_client, tenant_entity, name):
    assert admin_client.get(reverse(f"admin:automation_{name}_changelist")).status_code == 200


def test_empty_conditions_in_the_console_mean_match_everything(admin_client, tenant_entity):
    response = admin_client.post(
        reverse("admin:automation_automationrule_add"),
        _rule_form(trigger_conditions="", **{"actions-TOTAL_FORMS": "0"}),
    )

    assert response.status_code == 302
    assert AutomationRule.objects.get().trigger_conditions == {}


def test_a_scheduled_rule_from_the_console_gets_its_next_run(admin_client, tenant_entity):
    response = admin_client.post(
        reverse("admin:automation_automationrule_add"),
        _rule_form(
            trigger_type=TriggerType.objects.get(name="scheduled").pk,
            trigger_conditions="{}",
            cron_expression="*/10 * * * *",
        ),
    )

    assert response.status_code == 302
    assert AutomationRule.objects.get().next_run_at is not None


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("cron_expression", "0 0 30 2 *", "never fires"),
        (
            "trigger_conditions",
            '{"field_conditions": [{"field_name": ["name"], "operator": "equals", "value": 1}]}',
            "must be text",
        ),
        (
            "actions-0-action_config",
            '{"alert_type": "a", "title": "t", "message": "m", "recipients": {"users": ["²"]}}',
            "no such user(s): ²",
        ),
    ],
)
def test_the_console_refuses_input_that_used_to_be_a_500(
    admin_client, tenant_entity, field, value, named
):
    scheduled = {"trigger_type": TriggerType.objects.get(name="scheduled").pk}
    form = _rule_form(
        **(scheduled if field == "cron_expression" else {}),
        **({"trigger_conditions": "{}"} if field == "cron_expression" else {}),
        **{field: value},
    )

    response = admin_client.post(reverse("admin:automation_automationrule_add"), form)

    assert response.status_code == 200
    assert named in response.content.decode()
    assert not AutomationRule.objects.exists()
