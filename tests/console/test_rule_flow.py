"""A rule made in the browser with the guided form (issue 12, items 4 and 7):
a condition from the builder, a create_alert action edited with its typed
fields; the tenant renamed in the console fires it, and the alert is
acknowledged from its page. The outbox is drained by its service in this
process (what a cluster's worker calls), right after the live server
committed the change."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from automation.engine import outbox_process
from automation.entities import entities_sync
from automation.models import Alert, AutomationRule, Entity
from tests.operations.factories import TenantFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_a_rule_from_the_typed_editor_raises_an_alert_acknowledged_on_its_page(logged_in, step):
    page = logged_in
    entities_sync()
    tenant = TenantFactory(name="Initech")
    entity = Entity.objects.get(model_label="operations.Tenant")

    step("open a new rule on tenants")
    page.goto("/admin/automation/automationrule/add/")
    page.fill("#id_name", "Tell on-call about renamed tenants")
    page.select_option("#id_entity", str(entity.pk))
    page.select_option("#id_trigger_type", label="on_update")

    step("a condition from the builder: the tenant's fields and the operators to choose")
    row = page.locator(".condition-builder tr.condition-row").first
    field = row.locator("select[name$='__field']")
    expect(field.locator("option[value='workspace']")).to_have_count(1)
    field.select_option("name")
    row.locator("select[name$='__operator']").select_option("changed_to")
    row.locator("input[name$='__value']").fill("Acme")

    step("an alert action, with the fields for its type")
    page.locator("#actions-group .add-row a").click()
    action = page.locator("#actions-0")
    expect(action.locator("input[name='actions-0-execution_order']")).to_have_value("1")
    action.locator("input[name='actions-0-name']").fill("alert on-call")
    action.locator("select[name='actions-0-action_type']").select_option("create_alert")
    expect(action.locator("fieldset.action-config-create_alert")).to_be_visible()
    expect(action.locator("fieldset.action-config-send_notification")).to_be_hidden()
    expect(action.locator("fieldset.action-config-json")).to_be_hidden()
    action.locator("select[name='actions-0-create_alert__severity']").select_option("critical")
    action.locator("input[name='actions-0-create_alert__title']").fill("Tenant {{name}} renamed")
    action.locator("textarea[name='actions-0-create_alert__message']").fill("Was {{old.name}}.")
    action.locator("input[name='actions-0-create_alert__recipients__users']").fill("oncall")

    step("saved without an alert type: the page comes back with the message beside that field")
    page.click("input[name=_save]")
    action = page.locator("#actions-0")
    error = action.locator(".field-create_alert__alert_type .errorlist")
    expect(error).to_contain_text("alert_type is required")
    expect(error).to_be_visible()
    expect(action.locator("fieldset.action-config-json")).to_be_hidden()
    expect(action.locator("input[name='actions-0-create_alert__title']")).to_have_value(
        "Tenant {{name}} renamed"
    )
    assert not AutomationRule.objects.exists()

    step("save the rule with its alert type")
    action.locator("input[name='actions-0-create_alert__alert_type']").fill("tenant_renamed")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist .success")).to_be_visible()
    rule = AutomationRule.objects.get()
    assert rule.trigger_conditions == {
        "field_conditions": [{"field_name": "name", "operator": "changed_to", "value": "Acme"}]
    }
    assert rule.actions.get().action_config == {
        "alert_type": "tenant_renamed",
        "severity": "critical",
        "title": "Tenant {{name}} renamed",
        "message": "Was {{old.name}}.",
        "recipients": {"users": ["oncall"]},
    }

    step("trigger it: rename the tenant in the console")
    page.goto(f"/admin/operations/tenant/{tenant.pk}/change/")
    page.fill("#id_name", "Acme")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist .success")).to_be_visible()
    outbox_process()
    alert = Alert.objects.get()
    assert (alert.title, alert.severity) == ("Tenant Acme renamed", "critical")

    step("open the alert from its list")
    page.goto("/admin/automation/alert/")
    page.locator(f"#result_list a[href*='/alert/{alert.pk}/change/']").click()
    expect(page.locator("#content")).to_contain_text("Tenant Acme renamed")

    step("acknowledge it on its page")
    page.locator('button[data-action="acknowledge"]').click()
    expect(page.locator(".messagelist .success")).to_have_text(f"Alert {alert.pk} acknowledged.")
    assert Alert.objects.get(pk=alert.pk).status == "acknowledged"
