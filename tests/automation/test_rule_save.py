"""One write path for rules and action templates: the console (admin) and
the API call the same services (rule_save, template_save), so the same edit
leaves the same rows whichever way it was made."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from automation.admin import rules as rule_admin
from automation.models import ActionTemplate, AutomationRule, TriggerType
from tests.automation.factories import admin_rule_form, make_rule

pytestmark = pytest.mark.django_db

CRON = "0 3 * * *"
ACTION = {
    "name": "tell root",
    "action_type": "create_alert",
    "execution_order": 1,
    "action_config": {
        "alert_type": "renamed",
        "title": "{{name}}",
        "message": "m",
        "recipients": {"users": ["root"]},
    },
}


@pytest.fixture
def console(client, root):
    client.force_login(root)
    return client


@pytest.fixture
def api(root):
    client = APIClient()
    client.force_authenticate(root)
    return client


def _twins(root):
    """Two identical rules, one per entry point, and a rule both will run after."""
    parent = make_rule(actor=root, name="parent")
    return parent, [make_rule(actor=root, name="twin", actions=[ACTION]) for _ in range(2)]


def _row(rule: AutomationRule) -> dict:
    rule.refresh_from_db()
    return {
        "fields": {
            name: getattr(rule, name)
            for name in (
                "description",
                "entity_type_id",
                "trigger_type_id",
                "trigger_conditions",
                "cron_expression",
                "next_run_at",
                "is_active",
                "version",
                "updated_by_id",
                "deactivated_by_id",
            )
        },
        "deactivated": rule.deactivated_at is not None,
        "actions": list(
            rule.actions.values_list(
                "name", "action_type", "action_config", "execution_order", "is_active"
            )
        ),
        "parents": sorted(rule.parent_links.values_list("parent_rule_id", flat=True)),
    }


def _console_edit(console, rule, *, parent, active: bool, description: str):
    """The change form as a browser posts it: the rule's rows as initial forms."""
    action = rule.actions.get()
    link = rule.parent_links.first()
    parents = (
        {"parent_links-INITIAL_FORMS": "1", "parent_links-0-id": str(link.pk)}
        if link is not None
        else {}
    )
    form = admin_rule_form(
        name="twin",
        description=description,
        trigger_type=TriggerType.objects.get(name="scheduled").pk,
        trigger_conditions="{}",
        cron_expression=CRON,
        **{
            "actions-INITIAL_FORMS": "1",
            "actions-0-id": str(action.pk),
            "actions-0-rule": str(rule.pk),
            "actions-0-name": "tell root daily",
            "actions-0-action_config": json.dumps(ACTION["action_config"]),
            "parent_links-TOTAL_FORMS": "1",
            "parent_links-0-parent_rule": str(parent.pk),
            "parent_links-0-child_rule": str(rule.pk),
            **parents,
        },
    )
    if not active:
        del form["is_active"]  # an unticked box is not sent
    response = console.post(reverse("admin:automation_automationrule_change", args=[rule.pk]), form)
    assert response.status_code == 302, response.context and response.context["errors"]


def _api_edit(api, rule, *, parent, active: bool, description: str):
    response = api.put(
        f"/api/v1/automation/rules/{rule.pk}/",
        {
            "name": "twin",
            "description": description,
            "entity": "operations_tenant",
            "trigger_type": "scheduled",
            "trigger_conditions": {},
            "cron_expression": CRON,
            "is_active": active,
            "actions": [{**ACTION, "name": "tell root daily"}],
            "depends_on": [parent.pk],
        },
        format="json",
    )
    assert response.status_code == 200, response.data


def test_the_console_and_the_api_make_the_same_rows_for_the_same_edit(
    console, api, root, tenant_entity
):
    # given: twin rules
    parent, (by_console, by_api) = _twins(root)

    # when: the same edit through each door: scheduled, deactivated, action renamed, a parent
    _console_edit(console, by_console, parent=parent, active=False, description="nightly")
    _api_edit(api, by_api, parent=parent, active=False, description="nightly")

    # then: the same rows (version bumped once, next run, who deactivated it)
    console_row, api_row = _row(by_console), _row(by_api)
    assert console_row == api_row
    assert console_row["fields"]["version"] == 2
    assert console_row["fields"]["next_run_at"] is not None
    assert console_row["fields"]["deactivated_by_id"] == root.pk and console_row["deactivated"]
    assert console_row["parents"] == [parent.pk]
    assert [a[0] for a in console_row["actions"]] == ["tell root daily"]

    # when: both are turned back on
    _console_edit(console, by_console, parent=parent, active=True, description="again")
    _api_edit(api, by_api, parent=parent, active=True, description="again")

    # then: still the same rows, the deactivation cleared
    console_row, api_row = _row(by_console), _row(by_api)
    assert console_row == api_row
    assert console_row["fields"]["version"] == 3
    assert console_row["fields"]["deactivated_by_id"] is None and not console_row["deactivated"]


def test_a_console_save_without_changes_bumps_the_version_as_the_api_does(
    console, api, root, tenant_entity
):
    # given
    _parent, (by_console, by_api) = _twins(root)
    action = by_console.actions.get()
    url = reverse("admin:automation_automationrule_change", args=[by_console.pk])

    # when: saved as they are
    response = console.post(
        url,
        admin_rule_form(
            name="twin",
            trigger_conditions="{}",
            **{
                "actions-INITIAL_FORMS": "1",
                "actions-0-id": str(action.pk),
                "actions-0-rule": str(by_console.pk),
                "actions-0-name": ACTION["name"],
                "actions-0-action_config": json.dumps(ACTION["action_config"]),
                # as a browser sends them: the JSON fields' initial values, to tell a change
                "initial-trigger_conditions": "{}",
                "initial-actions-0-action_config": json.dumps(ACTION["action_config"]),
            },
        ),
    )
    api.patch(f"/api/v1/automation/rules/{by_api.pk}/", {}, format="json")

    # then: the actions were kept as they were (not given: unchanged) and both are at version 2
    assert response.status_code == 302
    assert by_console.actions.get().pk == action.pk
    assert _row(by_console) == _row(by_api)
    assert _row(by_console)["fields"]["version"] == 2


def test_a_rule_created_inactive_is_the_same_row_from_the_console_and_the_api(
    console, api, root, tenant_entity
):
    # when: the same new, inactive, scheduled rule through each door
    form = admin_rule_form(
        name="twin",
        trigger_type=TriggerType.objects.get(name="scheduled").pk,
        trigger_conditions="{}",
        cron_expression=CRON,
        **{"actions-0-name": ACTION["name"]},
    )
    del form["is_active"]
    added = console.post(reverse("admin:automation_automationrule_add"), form)
    posted = api.post(
        "/api/v1/automation/rules/",
        {
            "name": "twin",
            "entity": "operations_tenant",
            "trigger_type": "scheduled",
            "cron_expression": CRON,
            "is_active": False,
            "actions": [{**ACTION, "action_config": json.loads(form["actions-0-action_config"])}],
        },
        format="json",
    )

    # then: one row each, alike: version 1, its next run, never deactivated by anyone
    assert added.status_code == 302 and posted.status_code == 201, posted.data
    by_console, by_api = AutomationRule.objects.order_by("id")
    assert _row(by_console) == _row(by_api)
    assert _row(by_console)["fields"]["version"] == 1
    assert _row(by_console)["fields"]["deactivated_by_id"] is None
    assert by_console.created_by == by_api.created_by == root


def test_a_refusal_after_the_form_was_valid_is_a_message_and_saves_nothing(
    console, root, tenant_entity, monkeypatch
):
    # given: a save the service refuses although the form was valid (the
    # service is replaced: it stands in for a concurrent edit the form could not see)
    def refuse(**_kwargs):
        raise ValidationError({"depends_on": ["Dependency cycle: A → B → A."]})

    monkeypatch.setattr(rule_admin, "rule_save", refuse)

    # when
    response = console.post(
        reverse("admin:automation_automationrule_add"), admin_rule_form(), follow=True
    )

    # then
    assert response.status_code == 200
    assert "Dependency cycle: A → B → A." in response.content.decode()
    assert not AutomationRule.objects.exists()


def test_the_template_console_saves_through_the_service(console, root):
    url = reverse("admin:automation_actiontemplate_add")
    body = {
        "name": "page on-call",
        "description": "",
        "action_type": "create_alert",
        "default_config": '{"severity": "high"}',
    }

    bad = console.post(url, {**body, "action_type": "teleport", "is_active": "on"})
    created = console.post(url, body)  # is_active unticked: created inactive

    assert bad.status_code == 200 and "Unknown action type" in bad.content.decode()
    assert created.status_code == 302
    template = ActionTemplate.objects.get()
    assert (template.created_by, template.is_active, template.deactivated_by) == (
        root,
        False,
        root,
    )
