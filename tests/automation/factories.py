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
