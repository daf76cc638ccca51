"""Every operator action on automation needs the permission its service
needs, checked in the service for every caller: a staff user who may only
view gets a 403 from the API, an error message (or no such action) in the
admin, and nothing changes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import constants as message_levels
from django.contrib.messages import get_messages
from django.urls import reverse
from rest_framework.test import APIClient

from automation.engine import event_replay
from automation.models import (
    Alert,
    AutomationEvent,
    AutomationExecution,
    AutomationRule,
    NotificationDelivery,
)
from automation.services import (
    alert_set_status_by_operator,
    delivery_retry,
    rule_deactivate,
    rule_delete,
    rule_dry_run,
)
from config.errors import Forbidden
from tests.automation.factories import AlertFactory, make_rule
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

VIEW_ONLY = [
    "view_automationrule",
    "view_ruleaction",
    "view_automationevent",
    "view_notificationdelivery",
    "view_alert",
]


def _staff(*codenames: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="automation", codename__in=codenames)
    )
    return type(user).objects.get(pk=user.pk)  # a fresh instance: no cached permissions


@pytest.fixture
def viewer():
    return _staff(*VIEW_ONLY)


@pytest.fixture
def world(tenant_entity):
    """A rule with an event and an execution behind it, a failed delivery, an alert."""
    rule = make_rule(name="watch tenants")
    tenant = TenantFactory(name="Old")
    tenant.name = "New"
    tenant.save()
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
    return {
        "rule": rule,
        "tenant": tenant,
        "event": AutomationEvent.objects.get(trigger="on_update"),
        "delivery": delivery,
        "alert": AlertFactory(),
    }


def _state(world) -> tuple:
    rule = AutomationRule.objects.get(pk=world["rule"].pk)
    return (
        rule.is_active,
        rule.version,
        AutomationExecution.objects.count(),
        NotificationDelivery.objects.values_list("status", "attempts").get(),
        Alert.objects.values_list("status", flat=True).get(),
        world["alert"].acknowledgements.count(),
    )


SERVICES = {
    "retry a delivery": lambda w, actor: delivery_retry(delivery_id=w["delivery"].pk, actor=actor),
    "replay an event": lambda w, actor: event_replay(w["event"].pk, actor=actor),
    "dry-run a rule": lambda w, actor: rule_dry_run(
        rule=w["rule"], entity="operations_tenant", object_id=w["tenant"].pk, actor=actor
    ),
    "acknowledge an alert": lambda w, actor: alert_set_status_by_operator(
        alert=w["alert"], status="acknowledged", actor=actor
    ),
    "dismiss an alert": lambda w, actor: alert_set_status_by_operator(
        alert=w["alert"], status="dismissed", actor=actor
    ),
    "deactivate a rule": lambda w, actor: rule_deactivate(rule=w["rule"], actor=actor),
    "delete a rule": lambda w, actor: rule_delete(rule=w["rule"], actor=actor),
}


@pytest.mark.parametrize("service", list(SERVICES))
def test_each_service_refuses_a_viewer_and_changes_nothing(world, viewer, service):
    # given
    before = _state(world)

    # when / then
    with pytest.raises(Forbidden) as refused:
        SERVICES[service](world, viewer)
    assert refused.value.status_code == 403
    assert "automation." in refused.value.message  # names the permission needed
    assert _state(world) == before


@pytest.mark.parametrize(
    ("service", "codenames"),
    [
        ("retry a delivery", ["change_notificationdelivery"]),
        ("replay an event", ["change_automationrule"]),
        ("dry-run a rule", ["dry_run_automationrule"]),
        ("acknowledge an alert", ["change_alert"]),
        ("deactivate a rule", ["change_automationrule"]),
        ("delete a rule", ["delete_automationrule"]),
    ],
)
def test_each_service_lets_the_holder_of_its_permission_through(world, service, codenames):
    SERVICES[service](world, _staff(*VIEW_ONLY, *codenames))


ADMIN_ACTIONS = [
    ("automation_notificationdelivery_changelist", "retry", "delivery"),
    ("automation_automationevent_changelist", "replay", "event"),
    ("automation_alert_changelist", "acknowledge", "alert"),
    ("automation_alert_changelist", "dismiss", "alert"),
    ("automation_automationrule_changelist", "deactivate_rules", "rule"),
]


@pytest.mark.parametrize(("changelist", "action", "target"), ADMIN_ACTIONS)
def test_a_viewer_using_an_admin_action_gets_an_error_and_nothing_changes(
    client, world, viewer, changelist, action, target
):
    # given
    client.force_login(viewer)
    before = _state(world)

    # when
    response = client.post(
        reverse(f"admin:{changelist}"),
        {"action": action, "_selected_action": [world[target].pk]},
        follow=True,
    )

    # then: the service's refusal, as an error message
    assert response.status_code == 200
    errors = [
        str(m) for m in get_messages(response.wsgi_request) if m.level == message_levels.ERROR
    ]
    assert len(errors) == 1 and errors[0].startswith("You may not "), errors
    assert "automation." in errors[0]
    assert _state(world) == before


@pytest.mark.parametrize(
    ("changelist", "action", "target", "codename", "changed"),
    [
        (*ADMIN_ACTIONS[0], "change_notificationdelivery", lambda w: w["delivery"].status),
        (*ADMIN_ACTIONS[1], "change_automationrule", lambda w: w["event"].attempts),
        (*ADMIN_ACTIONS[2], "change_alert", lambda w: w["alert"].status),
        (*ADMIN_ACTIONS[4], "change_automationrule", lambda w: w["rule"].is_active),
    ],
)
def test_the_holder_of_the_permission_uses_the_admin_action(
    client, world, changelist, action, target, codename, changed
):
    client.force_login(_staff(*VIEW_ONLY, codename))
    before = changed(world)

    client.post(
        reverse(f"admin:{changelist}"), {"action": action, "_selected_action": [world[target].pk]}
    )

    world[target].refresh_from_db()
    assert changed(world) != before


def test_a_viewer_opening_the_dry_run_page_gets_an_error_message(client, world, viewer):
    client.force_login(viewer)
    url = reverse("admin:automation_automationrule_dry_run", args=[world["rule"].pk])

    response = client.post(url, {"object_id": str(world["tenant"].pk)}, follow=True)

    assert response.status_code == 200
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("automation.dry_run_automationrule" in m for m in messages), messages
    assert response.redirect_chain[-1][0] == reverse(
        "admin:automation_automationrule_change", args=[world["rule"].pk]
    )


def test_the_api_answers_a_viewer_403_and_changes_nothing(world, viewer):
    api = APIClient()
    api.force_authenticate(viewer)
    before = _state(world)

    retry = api.post(f"/api/v1/automation/deliveries/{world['delivery'].pk}/retry/")
    dry_run = api.post(
        f"/api/v1/automation/rules/{world['rule'].pk}/dry-run/",
        {"entity": "operations_tenant", "id": str(world["tenant"].pk)},
        format="json",
    )

    assert (retry.status_code, dry_run.status_code) == (403, 403)
    assert retry.data["code"] == "permission_denied"
    assert _state(world) == before


def test_the_dry_run_permission_alone_opens_the_dry_run_page(client, world):
    client.force_login(_staff("dry_run_automationrule"))
    url = reverse("admin:automation_automationrule_dry_run", args=[world["rule"].pk])

    response = client.post(url, {"object_id": str(world["tenant"].pk)})

    assert response.status_code == 200
    assert response.context["result"]["matched"] is True
