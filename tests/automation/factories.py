"""Rules are built through the service (so they are validated like the API's);
the rest with factory-boy."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth.models import Group

from automation.models import Alert, AlertRecipient, Entity, TriggerType
from automation.services import rule_save
from tests.operations.factories import TenantFactory, UserFactory, WorkspaceFactory  # noqa: F401


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"role-{n}")


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Alert

    alert_type = "test"
    title = factory.Sequence(lambda n: f"Alert {n}")
    message = "Something happened."


class AlertRecipientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertRecipient

    alert = factory.SubFactory(AlertFactory)
    recipient_type = "user"


def make_rule(
    *,
    actor=None,
    name: str = "rule",
    entity: str = "operations.Tenant",
    trigger: str = "on_update",
    conditions: list[dict[str, Any]] | None = None,
    actions: list[dict[str, Any]] | None = None,
    depends_on=(),
    cron_expression: str = "",
):
    return rule_save(
        actor=actor or UserFactory(),
        name=name,
        entity=Entity.objects.get(model_label=entity),
        trigger_type=TriggerType.objects.get(name=trigger),
        trigger_conditions={"field_conditions": conditions} if conditions is not None else {},
        actions=actions or [],
        depends_on=depends_on,
        cron_expression=cron_expression,
    )


def alert_action(*, recipients: dict | None = None, order: int = 1, **config) -> dict[str, Any]:
    return {
        "name": f"alert {order}",
        "action_type": "create_alert",
        "execution_order": order,
        "action_config": {
            "alert_type": "tenant_changed",
            "severity": "high",
            "title": "Tenant {{name}} changed",
            "message": "Tenant {{id}} is now {{name}} (was {{old.name}}).",
            "recipients": recipients or {"users": [UserFactory().pk]},
            **config,
        },
    }


def update_field_action(field: str, value: Any, *, order: int = 1) -> dict[str, Any]:
    return {
        "name": f"set {field}",
        "action_type": "update_field",
        "execution_order": order,
        "action_config": {"field": field, "value": value},
    }


def admin_rule_form(**overrides) -> dict[str, str]:
    """The POST body of the admin's rule form: one create_alert action, no parents."""
    data = {
        "name": "From the console",
        "description": "",
        "entity": Entity.objects.get(model_label="operations.Tenant").pk,
        "trigger_type": TriggerType.objects.get(name="on_update").pk,
        "trigger_conditions": '{"field_conditions": [{"field_name": "name", "operator": "changed_to", "value": "Acme"}]}',
        "cron_expression": "",
        "is_active": "on",
        "actions-TOTAL_FORMS": "1",
        "actions-INITIAL_FORMS": "0",
        "actions-0-execution_order": "1",
        "actions-0-name": "alert",
        "actions-0-action_type": "create_alert",
        "actions-0-template": "",
        "actions-0-action_config": '{"alert_type": "renamed", "title": "{{name}}", "message": "m", "recipients": {"users": ["root"]}}',
        "actions-0-is_active": "on",
        "parent_links-TOTAL_FORMS": "0",
        "parent_links-INITIAL_FORMS": "0",
    }
    return {**data, **overrides}


# --- inbound webhooks ---------------------------------------------------------------------

INBOUND_SECRET = "inbound-test-secret-5a1f9c"
INBOUND_SECRET_SETTING = "AUTOMATION_INBOUND_SECRET_SHOP"


def inbound_source(*, slug: str = "shop", secret_setting: str = INBOUND_SECRET_SETTING, **fields):
    """An inbound source, made by the service (as the console makes one)."""
    from automation.services import inbound_source_save

    return inbound_source_save(
        actor=None,
        slug=slug,
        name=fields.pop("name", slug.title()),
        secret_setting=secret_setting,
        **fields,
    )


def signed_post(
    payload: Any = None,
    *,
    key: str | None = "evt-1",
    secret: str = INBOUND_SECRET,
    timestamp: int | str | None = None,
    body: bytes | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A post's body and headers, signed as a sender signs them."""
    import json
    import time

    from automation.services.inbound import (
        IDEMPOTENCY_HEADER,
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        inbound_signature,
    )

    if body is None:
        body = json.dumps({"type": "order.paid"} if payload is None else payload).encode()
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: inbound_signature(
            secret=secret, timestamp=timestamp, idempotency_key=key or "", body=body
        ),
    }
    if key is not None:
        headers[IDEMPOTENCY_HEADER] = key
    return body, headers


def inbound_alert_action(*, recipients: dict | None = None, **config) -> dict[str, Any]:
    return {
        "name": "alert",
        "action_type": "create_alert",
        "execution_order": 1,
        "action_config": {
            "alert_type": "big_order",
            "severity": "high",
            "title": "Order {{data.order_id}} paid: {{data.amount}}",
            "message": "Event {{object_pk}} of type {{type}}.",
            "recipients": recipients or {"users": [UserFactory().pk]},
            **config,
        },
    }
