"""A webhook is signed only with one of the configured webhook secrets
(AUTOMATION_WEBHOOK_SECRET and those AUTOMATION_WEBHOOK_SECRETS lists), never
with an arbitrary environment variable; a webhook that cannot be signed is
refused when its rule is saved."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.core.checks import run_checks
from django.urls import reverse
from rest_framework.test import APIClient

from automation.models import AutomationRule, NotificationDelivery
from automation.senders import SIGNATURE_HEADER
from automation.services import delivery_send
from tests.automation.factories import admin_rule_form, make_rule
from tests.automation.receivers import Receiver
from tests.operations.factories import TenantFactory

pytestmark = pytest.mark.django_db

RULES = "/api/v1/automation/rules/"


@pytest.fixture
def api(root):
    client = APIClient()
    client.force_authenticate(root)
    return client


@pytest.fixture
def secrets(settings):
    settings.AUTOMATION_WEBHOOK_SECRET = "default-webhook-secret"
    settings.AUTOMATION_WEBHOOK_SECRETS = ["AUTOMATION_WEBHOOK_SECRET_PARTNER"]
    settings.AUTOMATION_WEBHOOK_SECRET_PARTNER = "partner-webhook-secret"
    settings.AUTOMATION_DELIVERY_BACKOFF_SECONDS = 0


def _webhook_config(**config):
    return {
        "channels": ["webhook"],
        "webhook_url": "http://127.0.0.1:9/hook",
        "message": "Tenant {{name}}",
        **config,
    }


def _rule_body(**config):
    return {
        "name": "hook",
        "entity": "operations_tenant",
        "trigger_type": "on_update",
        "actions": [
            {
                "action_type": "send_notification",
                "execution_order": 1,
                "action_config": _webhook_config(**config),
            }
        ],
    }


@pytest.mark.parametrize("source", ["SECRET_KEY", "PATH", "KNOX_TOKEN", "EMAIL_HOST_PASSWORD"])
def test_the_api_refuses_a_secret_source_that_is_not_a_webhook_secret(
    api, tenant_entity, secrets, source
):
    # when: a rule asks to sign its webhook with another setting
    response = api.post(RULES, _rule_body(secret_env=source), format="json")

    # then: a 400 naming the source and the allowed ones; nothing written
    assert response.status_code == 400, response.data
    message = " ".join(response.data["actions"])
    assert repr(source) in message
    assert "AUTOMATION_WEBHOOK_SECRET, AUTOMATION_WEBHOOK_SECRET_PARTNER" in message
    assert "tests-only-not-a-secret" not in message  # SECRET_KEY's value
    assert not AutomationRule.objects.exists()


def test_the_admin_refuses_a_secret_source_that_is_not_a_webhook_secret(
    client, root, tenant_entity, secrets
):
    client.force_login(root)
    config = _webhook_config(secret_env="SECRET_KEY")

    response = client.post(
        reverse("admin:automation_automationrule_add"),
        admin_rule_form(
            **{
                "actions-0-action_type": "send_notification",
                "actions-0-action_config": json.dumps(config),
            }
        ),
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "secret_env &#x27;SECRET_KEY&#x27; is not a webhook secret" in page
    assert "AUTOMATION_WEBHOOK_SECRET, AUTOMATION_WEBHOOK_SECRET_PARTNER" in page
    assert not AutomationRule.objects.exists()


def test_a_listed_name_outside_the_webhook_secrets_is_not_allowed_and_the_check_says_so(
    api, tenant_entity, secrets, settings
):
    # given: an operator lists SECRET_KEY among the webhook secrets by mistake
    settings.AUTOMATION_WEBHOOK_SECRETS = ["AUTOMATION_WEBHOOK_SECRET_PARTNER", "SECRET_KEY"]

    # when
    response = api.post(RULES, _rule_body(secret_env="SECRET_KEY"), format="json")
    errors = [e for e in run_checks() if e.id == "automation.E001"]

    # then: still refused, and `manage.py check` names the bad entry
    assert response.status_code == 400
    assert len(errors) == 1 and "SECRET_KEY" in errors[0].msg


@pytest.mark.parametrize("secret_env", [None, "AUTOMATION_WEBHOOK_SECRET_PARTNER"])
def test_a_webhook_without_a_configured_secret_is_refused_when_saved(
    api, client, root, tenant_entity, settings, secret_env
):
    # given: no secret configured for the source the rule names
    settings.AUTOMATION_WEBHOOK_SECRET = ""
    settings.AUTOMATION_WEBHOOK_SECRETS = ["AUTOMATION_WEBHOOK_SECRET_PARTNER"]
    config = {"secret_env": secret_env} if secret_env else {}
    source = secret_env or "AUTOMATION_WEBHOOK_SECRET"

    # when: through the API and the admin
    response = api.post(RULES, _rule_body(**config), format="json")
    client.force_login(root)
    page = client.post(
        reverse("admin:automation_automationrule_add"),
        admin_rule_form(
            **{
                "actions-0-action_type": "send_notification",
                "actions-0-action_config": json.dumps(_webhook_config(**config)),
            }
        ),
    )

    # then: both refuse it, naming the setting to set
    assert response.status_code == 400
    assert f"no webhook secret is configured in {source}" in " ".join(response.data["actions"])
    assert page.status_code == 200
    assert f"no webhook secret is configured in {source}" in page.content.decode()
    assert not AutomationRule.objects.exists()


def test_a_rule_signs_with_the_listed_secret_it_names(
    tenant_entity, secrets, django_capture_on_commit_callbacks
):
    with Receiver() as receiver:
        # given: a rule that names the partner's secret
        make_rule(
            name="hook",
            actions=[
                {
                    "action_type": "send_notification",
                    "execution_order": 1,
                    "action_config": _webhook_config(
                        webhook_url=receiver.url, secret_env="AUTOMATION_WEBHOOK_SECRET_PARTNER"
                    ),
                }
            ],
        )
        tenant = TenantFactory(name="Old")

        # when: the change commits
        with django_capture_on_commit_callbacks(execute=True):
            tenant.name = "New"
            tenant.save()

    # then: the receiver got it signed with the partner's key
    assert NotificationDelivery.objects.get().status == "delivered"
    request = receiver.requests[0]
    expected = hmac.new(b"partner-webhook-secret", request["body"], hashlib.sha256).hexdigest()
    assert request["headers"][SIGNATURE_HEADER] == f"sha256={expected}"


def test_a_stored_delivery_naming_another_setting_is_not_signed_with_it(secrets):
    with Receiver() as receiver:
        # given: a delivery written before sources were checked, naming SECRET_KEY
        delivery = NotificationDelivery.objects.create(
            recipient=receiver.url,
            channel="webhook",
            payload={"url": receiver.url, "secret_env": "SECRET_KEY", "body": {}},
            max_attempts=1,
        )

        # when: a worker sends it
        status = delivery_send(delivery.pk)

    # then: nothing is sent, and the delivery says why
    delivery.refresh_from_db()
    assert status == "failed" and receiver.requests == []
    assert "'SECRET_KEY' is not a webhook secret" in delivery.error_message
