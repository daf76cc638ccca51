"""Rules API: CRUD with nested actions, validation naming what is wrong,
dry runs that write and send nothing, executions and deliveries."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.apps import apps
from django.core import mail
from rest_framework.test import APIClient

from automation.engine import outbox_process
from automation.models import AutomationRule
from tests.automation.factories import alert_action, make_rule
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

RULES = "/api/v1/automation/rules/"


@pytest.fixture
def admin_api(db):
    client = APIClient()
    client.force_authenticate(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def _rule_body(**overrides):
    recipient = UserFactory()
    body = {
        "name": "Tenant renamed",
        "entity": "operations_tenant",
        "trigger_type": "on_update",
        "trigger_conditions": {
            "field_conditions": [{"field_name": "name", "operator": "changed_to", "value": "Acme"}]
        },
        "actions": [
            {
                "name": "alert",
                "action_type": "create_alert",
                "execution_order": 1,
                "action_config": {
                    "alert_type": "renamed",
                    "title": "{{name}}",
                    "message": "renamed",
                    "recipients": {"users": [recipient.pk]},
                },
            }
        ],
    }
    return {**body, **overrides}


def test_create_a_rule_with_actions_then_read_update_and_list(admin_api, tenant_entity):
    created = admin_api.post(RULES, _rule_body(), format="json")
    assert created.status_code == 201, created.data
    rule = created.data
    assert rule["entity"] == "operations_tenant" and rule["entity_type"] == "table"
    assert rule["created_by"] == "root" and rule["version"] == 1
    assert [a["name"] for a in rule["actions"]] == ["alert"]

    changed = admin_api.patch(
        f"{RULES}{rule['id']}/", {"description": "now documented"}, format="json"
    )
    assert changed.status_code == 200, changed.data
    assert changed.data["version"] == 2
    assert changed.data["actions"][0]["name"] == "alert"  # untouched by a patch without actions

    listed = admin_api.get(RULES, {"entity": "operations_tenant"})
    assert [r["id"] for r in listed.data["results"]] == [rule["id"]]


@pytest.mark.parametrize(
    ("conditions", "key", "named"),
    [
        (
            [{"field_name": "name", "operator": "resembles", "value": "x"}],
            "trigger_conditions",
            "'resembles'",
        ),
        (
            [{"field_name": "colour", "operator": "equals", "value": "x"}],
            "trigger_conditions",
            "'colour'",
        ),
        (
            [{"field_name": "name", "operator": "in", "value": "x"}],
            "trigger_conditions",
            "needs a list",
        ),
    ],
)
def test_bad_conditions_are_a_400_naming_the_problem(
    admin_api, tenant_entity, conditions, key, named
):
    response = admin_api.post(
        RULES, _rule_body(trigger_conditions={"field_conditions": conditions}), format="json"
    )

    assert response.status_code == 400
    assert named in " ".join(response.data[key])
    assert not AutomationRule.objects.exists()


@pytest.mark.parametrize(
    ("action", "named"),
    [
        (
            {"action_type": "launch_rocket", "execution_order": 1},
            "unknown action type 'launch_rocket'",
        ),
        (
            {
                "action_type": "update_field",
                "execution_order": 1,
                "action_config": {"field": "colour", "value": 1},
            },
            "no field 'colour'",
        ),
        (
            {
                "action_type": "update_field",
                "execution_order": 1,
                "action_config": {"field": "name", "value": "x" * 300},
            },
            "not a valid value for name",
        ),
        (
            {
                "action_type": "create_alert",
                "execution_order": 1,
                "action_config": {
                    "alert_type": "a",
                    "title": "{{nope}}",
                    "message": "m",
                    "recipients": {"users": ["ghost"]},
                },
            },
            "{{nope}}",
        ),
        (
            {
                "action_type": "create_alert",
                "execution_order": 1,
                "action_config": {
                    "alert_type": "a",
                    "title": "t",
                    "message": "m",
                    "recipients": {"users": ["ghost"]},
                },
            },
            "no such user(s): ghost",
        ),
        (
            {
                "action_type": "send_notification",
                "execution_order": 1,
                "action_config": {"channels": ["pigeon"], "message": "m"},
            },
            "unknown channel(s) pigeon",
        ),
    ],
)
def test_bad_actions_are_a_400_naming_the_problem(admin_api, tenant_entity, action, named):
    response = admin_api.post(RULES, _rule_body(actions=[{"name": "a", **action}]), format="json")

    assert response.status_code == 400, response.data
    assert named in " ".join(response.data["actions"])
    assert not AutomationRule.objects.exists()


def test_execution_order_below_one_is_a_400(admin_api, tenant_entity):
    body = _rule_body()
    body["actions"][0]["execution_order"] = 0

    response = admin_api.post(RULES, body, format="json")

    assert response.status_code == 400
    assert "execution_order" in response.data["actions"][0]


def test_a_cycle_through_the_api_is_a_400_with_its_path(admin_api, tenant_entity):
    a = make_rule(name="A")
    b = make_rule(name="B", depends_on=[a])

    response = admin_api.patch(f"{RULES}{a.pk}/", {"depends_on": [b.pk]}, format="json")

    assert response.status_code == 400
    assert response.data["depends_on"] == [
        f"Dependency cycle: B (#{b.pk}) → A (#{a.pk}) → B (#{b.pk})."
    ]


def test_deleting_a_rule_with_history_deactivates_it(admin_api, tenant_entity):
    used = make_rule(name="used", actions=[alert_action()])
    unused = make_rule(
        name="unused", conditions=[{"field_name": "name", "operator": "equals", "value": "never"}]
    )
    tenant = TenantFactory()
    tenant.name = "x"
    tenant.save()
    outbox_process()

    kept = admin_api.delete(f"{RULES}{used.pk}/")
    gone = admin_api.delete(f"{RULES}{unused.pk}/")

    assert kept.status_code == 200 and kept.data["is_active"] is False
    assert kept.data["deactivated_by"] == "root"
    assert gone.status_code == 204
    assert list(AutomationRule.objects.values_list("name", flat=True)) == ["used"]


def test_rules_need_model_permissions(tenant_entity):
    client = APIClient()
    client.force_authenticate(UserFactory())

    assert client.get(RULES).status_code == 403
    assert client.post(RULES, _rule_body(), format="json").status_code == 403
    assert APIClient().get(RULES).status_code == 401


class _CountingServer:
    def __init__(self):
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                outer.hits += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _row_counts():
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_app_config("automation").get_models()
    }


def test_a_dry_run_shows_conditions_and_actions_and_writes_and_sends_nothing(
    admin_api, tenant_entity, django_capture_on_commit_callbacks, settings
):
    settings.AUTOMATION_WEBHOOK_SECRET = "s"
    receiver = _CountingServer()
    recipient = UserFactory(email="r@example.com")
    tenant = TenantFactory(name="Old")
    rule = make_rule(
        name="everything",
        conditions=[{"field_name": "name", "operator": "changed_to", "value": "Acme"}],
        actions=[
            alert_action(order=1, recipients={"users": [recipient.pk]}),
            {
                "name": "notify",
                "action_type": "send_notification",
                "execution_order": 2,
                "action_config": {
                    "channels": ["email", "webhook"],
                    "recipients": {"users": [recipient.pk]},
                    "webhook_url": receiver.url,
                    "message": "{{name}}",
                },
            },
            {
                "name": "set",
                "action_type": "update_field",
                "execution_order": 3,
                "action_config": {"field": "name", "value": "{{name}}!"},
            },
        ],
    )
    before = _row_counts()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_api.post(
            f"{RULES}{rule.pk}/dry-run/",
            {"entity": "operations_tenant", "id": str(tenant.pk), "changes": {"name": "Acme"}},
            format="json",
        )

    assert response.status_code == 200, response.data
    result = response.data
    assert result["matched"] is True
    assert result["conditions"] == [
        {
            "field_name": "name",
            "operator": "changed_to",
            "value": "Acme",
            "actual": "Acme",
            "old": "Old",
            "matched": True,
        }
    ]
    alert, notify, update = result["actions"]
    assert alert["would"]["would_create_alert"]["title"] == "Tenant Acme changed"
    assert {d["channel"] for d in notify["would"]["would_deliver"]} == {"email", "webhook"}
    assert update["would"]["would_update"] == {
        "model": "operations.Tenant",
        "pk": tenant.pk,
        "field": "name",
        "old": "Old",
        "new": "Acme!",
    }
    # nothing written, nothing queued, nothing sent
    assert _row_counts() == before
    assert callbacks == []
    assert mail.outbox == []
    assert receiver.hits == 0
    tenant.refresh_from_db()
    assert tenant.name == "Old"


def test_a_dry_run_for_a_missing_row_or_another_entity(admin_api, tenant_entity):
    rule = make_rule(name="r")

    missing = admin_api.post(
        f"{RULES}{rule.pk}/dry-run/", {"entity": "operations_tenant", "id": "999999"}, format="json"
    )
    other = admin_api.post(
        f"{RULES}{rule.pk}/dry-run/", {"entity": "operations_workspace", "id": "1"}, format="json"
    )
    bad_change = admin_api.post(
        f"{RULES}{rule.pk}/dry-run/",
        {
            "entity": "operations_tenant",
            "id": str(TenantFactory().pk),
            "changes": {"colour": "red"},
        },
        format="json",
    )

    assert missing.status_code == 404
    assert other.status_code == 400 and other.data["code"] == "automation.wrong_entity"
    assert bad_change.status_code == 400 and "colour" in bad_change.data["changes"][0]


def test_executions_and_deliveries_are_listed(
    admin_api, tenant_entity, django_capture_on_commit_callbacks
):
    recipient = UserFactory()
    rule = make_rule(
        name="r",
        actions=[
            {
                "name": "in app",
                "action_type": "send_notification",
                "execution_order": 1,
                "action_config": {
                    "channels": ["in_app"],
                    "recipients": {"users": [recipient.pk]},
                    "message": "hi {{name}}",
                },
            }
        ],
    )
    tenant = TenantFactory()
    with django_capture_on_commit_callbacks(execute=True):
        tenant.name = "T"
        tenant.save()

    executions = admin_api.get(
        "/api/v1/automation/executions/", {"rule": rule.pk, "status": "success"}
    )
    deliveries = admin_api.get("/api/v1/automation/deliveries/", {"channel": "in_app"})
    recipient_client = APIClient()
    recipient_client.force_authenticate(recipient)
    own = recipient_client.get("/api/v1/automation/deliveries/")
    stranger = APIClient()
    stranger.force_authenticate(UserFactory())

    assert executions.status_code == 200
    [execution] = executions.data["results"]
    assert (
        execution["rule_version"] == 1 and execution["actions_executed"][0]["status"] == "success"
    )
    [delivery] = deliveries.data["results"]
    assert (delivery["status"], delivery["message"]) == ("delivered", "hi T")
    assert [d["id"] for d in own.data["results"]] == [delivery["id"]]
    assert stranger.get("/api/v1/automation/deliveries/").data["results"] == []
    assert stranger.get("/api/v1/automation/executions/").status_code == 403


def test_a_dry_run_needs_the_dry_run_or_change_permission(tenant_entity):
    from django.contrib.auth.models import Permission

    rule = make_rule(name="r")
    tenant = TenantFactory()
    viewer, dry_runner = UserFactory(), UserFactory()
    viewer.user_permissions.add(Permission.objects.get(codename="view_automationrule"))
    dry_runner.user_permissions.add(
        Permission.objects.get(codename="view_automationrule"),
        Permission.objects.get(codename="dry_run_automationrule"),
    )
    body = {"entity": "operations_tenant", "id": str(tenant.pk)}

    refused = APIClient()
    refused.force_authenticate(viewer)
    allowed = APIClient()
    allowed.force_authenticate(dry_runner)

    assert refused.post(f"{RULES}{rule.pk}/dry-run/", body, format="json").status_code == 403
    assert allowed.post(f"{RULES}{rule.pk}/dry-run/", body, format="json").status_code == 200
    assert allowed.get(f"{RULES}{rule.pk}/").status_code == 200
    assert allowed.delete(f"{RULES}{rule.pk}/").status_code == 403
