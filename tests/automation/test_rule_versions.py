"""Rule versions: every save keeps the whole definition; executions name the
version they ran; the API, the console and a command show a version's diff;
webhook credentials are kept masked."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from automation.models import AutomationExecution, RuleVersion
from automation.services import rule_deactivate, rule_save
from tests.automation.factories import alert_action, make_rule, update_field_action
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

RULES = "/api/v1/automation/rules/"
TO_ACME = [{"field_name": "name", "operator": "changed_to", "value": "Acme"}]


@pytest.fixture
def edited(tenant_entity):
    """A rule saved three times: created, its conditions changed, deactivated."""
    editor = UserFactory(username="editor", is_superuser=True)
    rule = make_rule(actor=editor, name="to acme", conditions=TO_ACME, actions=[alert_action()])
    rule = rule_save(
        rule=rule,
        actor=editor,
        trigger_conditions={
            "field_conditions": [{"field_name": "name", "operator": "changed_to", "value": "Beta"}]
        },
        actions=[alert_action(order=1), update_field_action("name", "{{name}}!", order=2)],
    )
    rule = rule_deactivate(rule=rule, actor=editor)
    return rule


def test_every_save_keeps_the_whole_definition(edited):
    versions = list(RuleVersion.objects.filter(rule=edited).order_by("version"))

    assert [v.version for v in versions] == [1, 2, 3] == [1, 2, edited.version]
    first, second, third = (v.definition for v in versions)
    assert first["trigger_conditions"]["field_conditions"][0]["value"] == "Acme"
    assert [a["action_type"] for a in first["actions"]] == ["create_alert"]
    assert second["trigger_conditions"]["field_conditions"][0]["value"] == "Beta"
    assert [a["action_type"] for a in second["actions"]] == ["create_alert", "update_field"]
    assert (second["is_active"], third["is_active"]) == (True, False)
    assert versions[0].saved_by.username == "editor"


def test_a_refused_save_keeps_no_version(edited):
    with pytest.raises(Exception):  # noqa: B017 - any refusal: the point is what is kept
        rule_save(
            rule=edited,
            actor=edited.created_by,
            trigger_conditions={"field_conditions": [{"field_name": "colour"}]},
        )

    assert RuleVersion.objects.filter(rule=edited).count() == 3


def test_an_execution_names_the_version_that_ran(tenant_entity, django_capture_on_commit_callbacks):
    rule = make_rule(name="to acme", conditions=TO_ACME, actions=[alert_action()])
    rule = rule_save(rule=rule, actor=rule.created_by, description="now documented")
    tenant = TenantFactory()

    with django_capture_on_commit_callbacks(execute=True):
        tenant.name = "Acme"
        tenant.save()

    execution = AutomationExecution.objects.get(rule=rule)
    kept = RuleVersion.objects.get(rule=rule, version=execution.rule_version)
    assert execution.rule_version == 2 and kept.definition["description"] == "now documented"


def test_webhook_credentials_are_kept_masked(tenant_entity, settings):
    settings.AUTOMATION_WEBHOOK_SECRET = "s"
    rule = make_rule(
        name="hook",
        actions=[
            {
                "name": "notify",
                "action_type": "send_notification",
                "execution_order": 1,
                "action_config": {
                    "channels": ["webhook"],
                    "webhook_url": "https://bob:hunter2@hooks.example.com/x?token=abc123",
                    "message": "{{name}}",
                },
            }
        ],
    )

    (version,) = RuleVersion.objects.filter(rule=rule)

    url = version.definition["actions"][0]["action_config"]["webhook_url"]
    assert "hunter2" not in url and "abc123" not in url and "hooks.example.com" in url


def test_the_api_lists_versions_and_shows_a_diff(edited):
    client = APIClient()
    reader = UserFactory()
    reader.user_permissions.add(Permission.objects.get(codename="view_automationrule"))
    client.force_authenticate(reader)

    listed = client.get(f"{RULES}{edited.pk}/versions/")
    second = client.get(f"{RULES}{edited.pk}/versions/2/")
    first = client.get(f"{RULES}{edited.pk}/versions/1/")
    missing = client.get(f"{RULES}{edited.pk}/versions/9/")
    other_rule = client.get(f"{RULES}999999/versions/1/")

    assert listed.status_code == 200
    assert [v["version"] for v in listed.data["results"]] == [3, 2, 1]
    assert listed.data["results"][0]["saved_by"] == "editor"
    assert second.status_code == 200
    diff = second.data["diff"]
    assert '-        "value": "Acme"\n+        "value": "Beta"\n' in diff
    assert '+      "action_type": "update_field",' in diff
    assert first.data["diff"] == ""
    assert missing.status_code == 404 and other_rule.status_code == 404


def test_reading_versions_needs_the_view_permission(edited):
    client = APIClient()
    client.force_authenticate(UserFactory())

    response = client.get(f"{RULES}{edited.pk}/versions/")

    assert response.status_code == 403


def test_the_console_shows_a_version_with_its_diff_and_links_it_from_an_execution(
    client, tenant_entity, django_capture_on_commit_callbacks
):
    rule = make_rule(name="to acme", conditions=TO_ACME, actions=[alert_action()])
    rule = rule_save(rule=rule, actor=rule.created_by, description="documented")
    tenant = TenantFactory()
    with django_capture_on_commit_callbacks(execute=True):
        tenant.name = "Acme"
        tenant.save()
    execution = AutomationExecution.objects.get(rule=rule)
    version = RuleVersion.objects.get(rule=rule, version=2)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    rule_page = client.get(f"/admin/automation/automationrule/{rule.pk}/change/").content.decode()
    version_page = client.get(f"/admin/automation/ruleversion/{version.pk}/change/")
    execution_page = client.get(f"/admin/automation/automationexecution/{execution.pk}/change/")

    assert f"/admin/automation/ruleversion/?rule__id__exact={rule.pk}" in rule_page
    text = version_page.content.decode()
    assert version_page.status_code == 200
    assert "+  &quot;description&quot;: &quot;documented&quot;," in text
    assert f"/admin/automation/ruleversion/{version.pk}/change/" in execution_page.content.decode()


def test_the_command_lists_versions_and_prints_a_diff(edited, capsys):
    call_command("automation_rule_versions", str(edited.pk))
    listing = capsys.readouterr().out
    call_command("automation_rule_versions", str(edited.pk), "--diff", "3")
    diff = capsys.readouterr().out

    assert f"rule {edited.pk} to acme: now at version 3" in listing
    assert "v3" in listing and "by editor" in listing and "2 action(s)" in listing
    assert '-  "is_active": true,' in diff and '+  "is_active": false,' in diff


@pytest.mark.parametrize(
    ("args", "message"),
    [(["999999"], "rule 999999 does not exist"), (["{rule}", "--diff", "7"], "no kept version 7")],
)
def test_the_command_refuses_in_one_line(edited, args, message):
    with pytest.raises(CommandError) as refused:
        call_command("automation_rule_versions", *[a.format(rule=edited.pk) for a in args])

    assert message in str(refused.value) and "\n" not in str(refused.value)
