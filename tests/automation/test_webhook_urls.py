"""Credentials in a webhook URL are never shown back (API, admin, dry run),
the stored URL keeps working for sending, and an edit that sends back the
masked URL it was shown keeps the stored one."""

from __future__ import annotations

import base64
import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

from automation.models import ActionTemplate, AutomationRule, NotificationDelivery, RuleAction
from tests.automation.factories import admin_rule_form, make_rule
from tests.automation.receivers import Receiver
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

RULES = "/api/v1/automation/rules/"
PASSWORD = "hook-pass-5f3a9"
TOKEN = "tok-8c1d2e7b"
API_KEY = "key-77aa01"


def _url(base: str) -> str:
    host_and_path = base.split("://", 1)[1]
    return f"http://hookuser:{PASSWORD}@{host_and_path}?token={TOKEN}&channel=ops&api_key={API_KEY}"


def _masked(base: str) -> str:
    host_and_path = base.split("://", 1)[1]
    return f"http://***@{host_and_path}?token=***&channel=ops&api_key=***"


def _leaks(text: str) -> bool:
    return any(secret in text for secret in (PASSWORD, TOKEN, API_KEY))


@pytest.fixture
def api(root):
    client = APIClient()
    client.force_authenticate(root)
    return client


@pytest.fixture
def secret(settings):
    settings.AUTOMATION_WEBHOOK_SECRET = "webhook-secret"


def _notify(url: str, **config) -> dict:
    return {
        "name": "hook",
        "action_type": "send_notification",
        "execution_order": 1,
        "action_config": {"channels": ["webhook"], "webhook_url": url, "message": "m", **config},
    }


def _rule_body(url: str, **overrides) -> dict:
    return {
        "name": "hook",
        "entity": "operations_tenant",
        "trigger_type": "on_update",
        "actions": [_notify(url)],
        **overrides,
    }


def test_mask_webhook_url_hides_userinfo_and_secret_looking_query_values():
    from automation.webhooks import mask_webhook_url

    assert (
        mask_webhook_url("https://u:p@example.com:8443/a/b?token=t&page=2&signature=s#x")
        == "https://***@example.com:8443/a/b?token=***&page=2&signature=***#x"
    )
    assert mask_webhook_url("https://example.com/hook") == "https://example.com/hook"
    assert mask_webhook_url("https://example.com/{{name}}?key={{id}}") == (
        "https://example.com/{{name}}?key=***"
    )


def test_the_api_shows_a_masked_url_and_sending_uses_the_real_one(
    api, tenant_entity, secret, django_capture_on_commit_callbacks
):
    with Receiver() as receiver:
        # given: a rule created through the API with credentials in its webhook URL
        created = api.post(RULES, _rule_body(_url(receiver.url)), format="json")
        assert created.status_code == 201, created.data
        read = api.get(f"{RULES}{created.data['id']}/")
        listed = api.get(RULES)

        # then: readers see the URL masked
        for response in (created, read, listed):
            assert not _leaks(json.dumps(response.data, default=str))
        assert read.data["actions"][0]["action_config"]["webhook_url"] == _masked(receiver.url)

        # when: the rule fires
        tenant = TenantFactory(name="Old")
        with django_capture_on_commit_callbacks(execute=True):
            tenant.name = "New"
            tenant.save()

    # then: the request arrived with the real credentials
    assert NotificationDelivery.objects.get().status == "delivered"
    request = receiver.requests[0]
    assert request["path"] == f"/hooks/bureau?token={TOKEN}&channel=ops&api_key={API_KEY}"
    basic = base64.b64encode(f"hookuser:{PASSWORD}".encode()).decode()
    assert request["headers"]["Authorization"] == f"Basic {basic}"


@pytest.mark.parametrize("method", ["put", "patch"])
def test_sending_back_the_masked_url_keeps_the_stored_one(api, tenant_entity, secret, method):
    # given: a rule, read back through the API (URL masked)
    rule = make_rule(name="hook", actions=[_notify(_url("http://hooks.example.com/in"))])
    shown = api.get(f"{RULES}{rule.pk}/").data

    # when: a client edits something else and sends the actions back as shown
    body = {
        "name": "renamed",
        "entity": shown["entity"],
        "trigger_type": shown["trigger_type"],
        "actions": [
            {k: a[k] for k in ("name", "action_type", "action_config", "execution_order")}
            for a in shown["actions"]
        ],
    }
    if method == "patch":
        body = {"name": "renamed", "actions": body["actions"]}
    response = getattr(api, method)(f"{RULES}{rule.pk}/", body, format="json")

    # then: the stored URL is still the real one
    assert response.status_code == 200, response.data
    action = RuleAction.objects.get(rule=rule)
    assert action.action_config["webhook_url"] == _url("http://hooks.example.com/in")
    assert AutomationRule.objects.get(pk=rule.pk).name == "renamed"


def test_a_masked_url_that_matches_no_stored_one_is_refused(api, tenant_entity, secret):
    # when: a client creates a rule with a URL it copied from a masked answer
    response = api.post(RULES, _rule_body(_masked("http://hooks.example.com/in")), format="json")

    # then
    assert response.status_code == 400
    assert "masked" in " ".join(response.data["actions"])
    assert not AutomationRule.objects.exists()


def test_a_dry_run_shows_the_config_with_the_url_masked(api, tenant_entity, secret):
    rule = make_rule(name="hook", actions=[_notify(_url("http://hooks.example.com/in"))])
    tenant = TenantFactory()

    response = api.post(
        f"{RULES}{rule.pk}/dry-run/", {"entity": "operations_tenant", "id": str(tenant.pk)}
    )

    assert response.status_code == 200, response.data
    assert response.data["actions"][0]["config"]["webhook_url"] == _masked(
        "http://hooks.example.com/in"
    )
    assert not _leaks(json.dumps(response.data, default=str))


def test_the_admin_shows_the_url_masked_and_an_edit_keeps_the_stored_one(
    client, root, tenant_entity, secret
):
    # given: a rule with credentials in its webhook URL
    real = _url("http://hooks.example.com/in")
    rule = make_rule(name="hook", actions=[_notify(real)])
    action = rule.actions.get()
    client.force_login(root)
    url = reverse("admin:automation_automationrule_change", args=[rule.pk])

    # when: an operator opens the rule and saves it with the action renamed
    page = client.get(url)
    shown = page.context["inline_admin_formsets"][0].formset.forms[0]["action_config"].value()
    saved = client.post(
        url,
        admin_rule_form(
            name="hook",
            trigger_conditions="{}",
            **{
                "actions-INITIAL_FORMS": "1",
                "actions-0-id": str(action.pk),
                "actions-0-rule": str(rule.pk),
                "actions-0-name": "renamed hook",
                "actions-0-action_type": "send_notification",
                "actions-0-action_config": shown,
            },
        ),
    )

    # then: the page never showed the credentials, and the stored URL is intact
    assert page.status_code == 200 and not _leaks(page.content.decode())
    assert _masked("http://hooks.example.com/in") in json.loads(shown)["webhook_url"]
    assert saved.status_code == 302, saved.context and saved.context["errors"]
    action = rule.actions.get()  # an edit recreates the actions (rule_save), as the API's does
    assert action.name == "renamed hook"
    assert action.action_config["webhook_url"] == real


def test_a_view_only_operator_sees_the_url_masked_in_rules_and_templates(
    client, tenant_entity, secret
):
    # given: a rule and an action template with credentials in their URLs
    rule = make_rule(name="hook", actions=[_notify(_url("http://hooks.example.com/in"))])
    template = ActionTemplate.objects.create(
        name="partner hook",
        action_type="send_notification",
        default_config={"webhook_url": _url("http://hooks.example.com/t")},
        created_by=rule.created_by,
    )
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_automationrule", "view_ruleaction", "view_actiontemplate"]
        )
    )
    client.force_login(viewer)

    # when
    rule_page = client.get(reverse("admin:automation_automationrule_change", args=[rule.pk]))
    template_page = client.get(
        reverse("admin:automation_actiontemplate_change", args=[template.pk])
    )

    # then
    assert rule_page.status_code == 200 and template_page.status_code == 200
    assert not _leaks(rule_page.content.decode())
    assert not _leaks(template_page.content.decode())
    assert "***@hooks.example.com/in" in rule_page.content.decode()
    assert "***@hooks.example.com/t" in template_page.content.decode()


def test_the_template_admin_keeps_the_stored_url_when_saved_as_shown(client, root):
    real = _url("http://hooks.example.com/t")
    template = ActionTemplate.objects.create(
        name="partner hook",
        action_type="send_notification",
        default_config={"webhook_url": real},
        created_by=root,
    )
    client.force_login(root)
    url = reverse("admin:automation_actiontemplate_change", args=[template.pk])
    shown = client.get(url).context["adminform"].form["default_config"].value()

    saved = client.post(
        url,
        {
            "name": "partner hook",
            "description": "now documented",
            "action_type": "send_notification",
            "default_config": shown,
            "is_active": "on",
        },
    )

    assert saved.status_code == 302, saved.context and saved.context["adminform"].form.errors
    template.refresh_from_db()
    assert template.description == "now documented"
    assert template.default_config["webhook_url"] == real


def test_two_urls_that_differ_only_in_a_masked_part_each_keep_their_own(api, tenant_entity, secret):
    # given: two webhook actions whose URLs differ only in their token
    first = "http://hooks.example.com/in?token=first-0001"
    second = "http://hooks.example.com/in?token=second-0002"
    rule = make_rule(
        name="hooks",
        actions=[_notify(first), {**_notify(second), "name": "hook 2", "execution_order": 2}],
    )
    shown = api.get(f"{RULES}{rule.pk}/").data["actions"]

    # when: they are sent back as shown, in reverse order in the list
    response = api.patch(
        f"{RULES}{rule.pk}/",
        {
            "actions": [
                {k: a[k] for k in ("name", "action_type", "action_config", "execution_order")}
                for a in reversed(shown)
            ]
        },
        format="json",
    )

    # then
    assert response.status_code == 200, response.data
    urls = dict(
        RuleAction.objects.filter(rule=rule).values_list("execution_order", "action_config")
    )
    assert (urls[1]["webhook_url"], urls[2]["webhook_url"]) == (first, second)
