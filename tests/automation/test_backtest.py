"""Backtests: a rule — saved or not — matched against the stored event
history, nothing written or sent, compared with what the rules really did;
refusals are a 400 / one line and change nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from automation.models import (
    Alert,
    AutomationEvent,
    AutomationExecution,
    IdempotencyRecord,
    NotificationDelivery,
)
from automation.services import Window, rule_backtest, rule_save
from operations.models import Tenant
from tests.automation.factories import alert_action, make_rule, update_field_action
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

BACKTEST = "/api/v1/automation/rules/backtest/"
TO_ACME = [{"field_name": "name", "operator": "changed_to", "value": "Acme"}]


@pytest.fixture
def admin_api(db):
    client = APIClient()
    client.force_authenticate(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def history(tenant_entity, django_capture_on_commit_callbacks):
    """Five renames (two to Acme, three to other names) while a rule that
    alerts on "renamed to Acme" was active: real events, real executions."""
    rule = make_rule(name="to acme", conditions=TO_ACME, actions=[alert_action(order=1)])
    tenants = [TenantFactory(name=f"T{i}") for i in range(5)]
    for tenant, name in zip(tenants, ["Acme", "Beta", "Acme", "Gamma", "Delta"], strict=True):
        with django_capture_on_commit_callbacks(execute=True):
            tenant.name = name
            tenant.save()
    assert AutomationExecution.objects.filter(rule=rule, status="success").count() == 2
    return rule, tenants


def _side_effects() -> tuple[int, ...]:
    return (
        Alert.objects.count(),
        AutomationExecution.objects.count(),
        NotificationDelivery.objects.count(),
        IdempotencyRecord.objects.count(),
        AutomationEvent.objects.count(),
    )


def test_a_saved_rule_matches_what_it_really_did_and_nothing_is_written(history):
    rule, tenants = history
    before = _side_effects()

    # when
    result = rule_backtest(actor=None, rule=rule, window=Window.of(days=1))

    # then
    assert (result["rule"], result["rule_version"]) == (rule.pk, rule.version)
    assert result["events_scanned"] == 5  # the five updates, not the five creates
    assert result["matched"] == 2 and result["matched_rows"] == 2
    assert {m["id"] for m in result["sample"]} == {str(tenants[0].pk), str(tenants[2].pk)}
    (action,) = result["actions"]
    assert (action["would_run"], action["errors"]) == (2, 0)
    assert result["sample"][0]["actions"][0]["would"]["would_create_alert"]["title"] == (
        "Tenant Acme changed"
    )
    mine = result["actual"]["this_rule"]
    assert mine == {
        "executions": 2,
        "by_status": {"success": 2},
        "matched_not_executed": 0,
        "executed_not_matched": 0,
    }
    assert result["actual"]["all_rules"] == [{"rule": rule.pk, "name": "to acme", "executions": 2}]
    assert _side_effects() == before


def test_an_edited_rule_shows_what_would_have_differed(history):
    rule, _tenants = history
    # The rule is changed to match "Beta" instead: its two past executions no
    # longer match, and the Beta rename it never ran would.
    rule = rule_save(
        rule=rule,
        actor=rule.created_by,
        trigger_conditions={
            "field_conditions": [{"field_name": "name", "operator": "changed_to", "value": "Beta"}]
        },
    )

    result = rule_backtest(actor=None, rule=rule, window=Window.of(days=1))

    assert result["rule_version"] == 2
    assert result["matched"] == 1
    mine = result["actual"]["this_rule"]
    assert (mine["matched_not_executed"], mine["executed_not_matched"]) == (1, 2)


def test_an_unsaved_definition_through_the_api(admin_api, history):
    rule, tenants = history
    before = _side_effects()
    body = {
        "definition": {
            "entity": "operations_tenant",
            "trigger_type": "on_update",
            "trigger_conditions": {
                "field_conditions": [
                    {"field_name": "name", "operator": "in", "value": ["Gamma", "Delta"]}
                ]
            },
            "actions": [update_field_action("name", "{{name}}!")],
        },
        "days": 7,
    }

    # when
    response = admin_api.post(BACKTEST, body, format="json")

    # then
    assert response.status_code == 200, response.data
    result = response.data
    assert (result["rule"], result["rule_version"]) == (None, None)
    assert result["matched"] == 2
    assert {m["id"] for m in result["sample"]} == {str(tenants[3].pk), str(tenants[4].pk)}
    would = result["sample"][0]["actions"][0]["would"]["would_update"]
    assert would["field"] == "name" and would["new"] in ("Gamma!", "Delta!")
    assert result["actual"]["this_rule"] is None
    assert result["actual"]["all_rules"] == [{"rule": rule.pk, "name": "to acme", "executions": 2}]
    assert _side_effects() == before
    assert sorted(Tenant.objects.values_list("name", flat=True)) == sorted(
        ["Acme", "Beta", "Acme", "Gamma", "Delta"]
    )


def test_the_window_bounds_the_history(history):
    rule, _tenants = history
    AutomationEvent.objects.update(created_at=timezone.now() - timedelta(days=10))

    recent = rule_backtest(actor=None, rule=rule, window=Window.of(days=7))
    older = rule_backtest(
        actor=None,
        rule=rule,
        window=Window.of(since=timezone.now() - timedelta(days=11), until=timezone.now()),
    )

    assert (recent["events_scanned"], recent["matched"]) == (0, 0)
    assert recent["actual"]["this_rule"]["executions"] == 0
    assert (older["events_scanned"], older["matched"]) == (5, 2)


def test_history_is_read_in_batches_whatever_its_size(history):
    rule, _tenants = history

    with CaptureQueriesContext(connection) as queries:
        result = rule_backtest(actor=None, rule=rule, window=Window.of(days=1), batch_size=2)

    assert result["events_scanned"] == 5 and result["matched"] == 2
    event_reads = [
        q
        for q in queries
        if 'FROM "automation_automationevent"' in q["sql"] and '"id" > ' in q["sql"]
    ]
    # 5 events in batches of 2: three reads with rows and the empty one that ends it.
    assert len(event_reads) == 4
    assert all("LIMIT 2" in q["sql"] for q in event_reads)


def test_the_sample_is_bounded_but_the_counts_are_not(history):
    rule, _tenants = history

    result = rule_backtest(actor=None, rule=rule, window=Window.of(days=1), sample_size=1)

    assert result["matched"] == 2 and len(result["sample"]) == 1
    assert result["actions"][0]["would_run"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"days": 7}, "rule"),  # neither rule nor definition
        (
            {
                "rule": None,
                "definition": {"entity": "operations_tenant", "trigger_type": "on_update"},
                "days": 7,
            },
            "rule",
        ),  # both
        ({"rule": 999999, "days": 7}, "rule"),  # no such rule
        ({"rule": None, "days": 0}, "days"),
        ({"rule": None, "days": 400}, "days"),
        ({"rule": None}, "days"),  # no window
        ({"rule": None, "since": "2026-11-01T00:00:00Z", "until": "2026-10-01T00:00:00Z"}, "until"),
        ({"rule": None, "since": "2020-01-01T00:00:00Z"}, "since"),  # longer than a year
        ({"definition": {"entity": "nope", "trigger_type": "on_update"}, "days": 1}, "definition"),
        (
            {
                "definition": {
                    "entity": "operations_tenant",
                    "trigger_type": "on_update",
                    "trigger_conditions": {"field_conditions": [{"field_name": "colour"}]},
                },
                "days": 1,
            },
            "trigger_conditions",
        ),
        (
            {
                "definition": {
                    "entity": "operations_tenant",
                    "trigger_type": "on_update",
                    "actions": [{"action_type": "explode", "execution_order": 1}],
                },
                "days": 1,
            },
            "actions",
        ),
    ],
)
def test_bad_requests_are_a_400_naming_the_field(admin_api, history, body, field):
    rule, _tenants = history
    if body.get("rule", 0) is None:
        body = {**body, "rule": rule.pk}
    before = _side_effects()

    response = admin_api.post(BACKTEST, body, format="json")

    assert response.status_code == 400, response.data
    assert field in json.dumps(response.data), response.data
    assert _side_effects() == before


def test_a_scheduled_rule_is_refused_with_the_reason(admin_api, tenant_entity):
    rule = make_rule(name="nightly", trigger="scheduled", cron_expression="0 3 * * *")

    response = admin_api.post(BACKTEST, {"rule": rule.pk, "days": 7}, format="json")

    assert response.status_code == 400
    assert response.data["code"] == "automation.backtest_scheduled"
    assert "scheduled rule" in response.data["detail"]


def test_who_may_backtest(history):
    rule, _tenants = history
    nobody = APIClient()
    nobody.force_authenticate(UserFactory(is_staff=True))
    dry_runner = UserFactory(is_staff=True)
    dry_runner.user_permissions.add(
        Permission.objects.get(codename="dry_run_automationrule"),
        Permission.objects.get(codename="view_automationrule"),
    )
    allowed = APIClient()
    allowed.force_authenticate(dry_runner)

    refused = nobody.post(BACKTEST, {"rule": rule.pk, "days": 1}, format="json")
    answered = allowed.post(BACKTEST, {"rule": rule.pk, "days": 1}, format="json")

    assert refused.status_code == 403
    assert answered.status_code == 200 and answered.data["matched"] == 2


def test_the_service_checks_the_permission_itself(history):
    rule, _tenants = history
    from config.errors import Forbidden

    with pytest.raises(Forbidden):
        rule_backtest(actor=UserFactory(), rule=rule, window=Window.of(days=1))


def test_the_command_prints_the_summary_and_json(history, capsys):
    rule, _tenants = history

    call_command("automation_backtest", str(rule.pk), "--days", "30")
    summary = capsys.readouterr().out
    call_command("automation_backtest", str(rule.pk), "--days", "30", "--json")
    whole = json.loads(capsys.readouterr().out)

    assert f"rule {rule.pk} v1 to acme" in summary
    assert "events scanned 5, matched 2 (2 distinct rows)" in summary
    assert "would run 2, errors 0" in summary
    assert "this rule really executed 2 (success 2)" in summary
    assert whole["matched"] == 2 and whole["rule_version"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["999999"], "rule 999999 does not exist"),
        (["{rule}", "--days", "0"], "days: Must be from 1 to 366."),
        (["{rule}", "--since", "yesterday"], "--since must be an ISO date and time"),
        (["{rule}", "--sample", "1000"], "--sample must be from 0 to 200"),
    ],
)
def test_the_command_refuses_in_one_line(history, args, message):
    rule, _tenants = history
    args = [a.format(rule=rule.pk) for a in args]

    with pytest.raises(CommandError) as refused:
        call_command("automation_backtest", *args)

    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


# --- the console page ---------------------------------------------------------------------
def test_the_console_page_backtests_a_saved_rule(client, history):
    rule, _tenants = history
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = f"/admin/automation/automationrule/{rule.pk}/backtest/"
    before = _side_effects()

    change_page = client.get(f"/admin/automation/automationrule/{rule.pk}/change/")
    form_page = client.get(url)
    answered = client.post(url, {"days": "30", "sample_size": "5"})

    assert url in change_page.content.decode()  # linked from the rule's page
    assert form_page.status_code == 200 and b"Last N days" in form_page.content
    text = answered.content.decode()
    assert answered.status_code == 200
    assert "2 of 5 events would have matched" in text
    assert "This rule executed 2 time(s) on these events: 2 success." in text
    assert "would_create_alert" in text
    assert _side_effects() == before


def test_the_console_page_refuses_without_the_permission_and_bad_input(client, history):
    rule, _tenants = history
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_automationrule"))
    url = f"/admin/automation/automationrule/{rule.pk}/backtest/"

    client.force_login(viewer)
    refused = client.get(url, follow=True)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    bad = client.post(url, {"days": "0", "sample_size": "5"})

    assert refused.redirect_chain[-1][0].endswith(f"/automationrule/{rule.pk}/change/")
    assert "You may not backtest automation rules" in refused.content.decode()
    assert bad.status_code == 200 and "would have matched" not in bad.content.decode()
    assert "Ensure this value is greater than or equal to 1." in bad.content.decode()


def test_a_window_before_the_calendar_starts_is_a_400(admin_api, history):
    rule, _tenants = history

    response = admin_api.post(
        BACKTEST, {"rule": rule.pk, "days": 5, "until": "0001-01-02T00:00:00Z"}, format="json"
    )

    assert response.status_code == 400 and "until" in response.data
