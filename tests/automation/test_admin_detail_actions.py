"""Actions on the detail pages of an alert (acknowledge, dismiss), a delivery
(retry) and a rule (dry run): the same services and permission checks as the
bulk actions and the API; failures are error messages, never successes."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import constants, get_messages
from django.urls import reverse

from automation.models import Alert, NotificationDelivery
from tests.automation.factories import AlertFactory, make_rule
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db


def _do(client, model: str, obj, name: str):
    url = reverse(f"admin:automation_{model}_object_action", args=[obj.pk, name])
    return client.post(url, follow=True)


def _messages(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in get_messages(response.wsgi_request)]


def _page(client, model: str, obj) -> str:
    return client.get(reverse(f"admin:automation_{model}_change", args=[obj.pk])).text


def _delivery(status: str) -> NotificationDelivery:
    recipient = UserFactory()
    return NotificationDelivery.objects.create(
        recipient=str(recipient.pk),
        recipient_user=recipient,
        channel="in_app",
        status=status,
        attempts=5,
        max_attempts=5,
        payload={"subject": "s", "message": "m"},
    )


def test_an_alert_is_acknowledged_from_its_page(admin_client, root):
    # given
    alert = AlertFactory(severity="critical")
    page = _page(admin_client, "alert", alert)
    assert 'data-action="acknowledge"' in page
    assert 'data-action="dismiss"' in page

    # when
    response = _do(admin_client, "alert", alert, "acknowledge")

    # then
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    assert alert.acknowledgements.get().acknowledged_by == root
    assert _messages(response) == [(constants.SUCCESS, f"Alert {alert.pk} acknowledged.")]
    # and the page no longer offers to acknowledge it
    assert 'data-action="acknowledge"' not in response.text


def test_an_alert_is_dismissed_from_its_page(admin_client):
    alert = AlertFactory()

    response = _do(admin_client, "alert", alert, "dismiss")

    assert Alert.objects.get(pk=alert.pk).status == "dismissed"
    assert _messages(response) == [(constants.SUCCESS, f"Alert {alert.pk} dismissed.")]


def test_acknowledging_without_the_permission_is_an_error_and_changes_nothing(client):
    # given: staff who may view alerts, not change them for everyone
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_alert"))
    alert = AlertFactory()
    client.force_login(viewer)

    # when
    response = _do(client, "alert", alert, "acknowledge")

    # then
    [(level, _text)] = _messages(response)
    assert level == constants.ERROR
    assert Alert.objects.get(pk=alert.pk).status == "active"


def test_a_resolved_alert_cannot_be_dismissed_and_says_so_in_red(admin_client):
    alert = AlertFactory(status="resolved")

    response = _do(admin_client, "alert", alert, "dismiss")

    [(level, text)] = _messages(response)
    assert level == constants.ERROR
    assert "is resolved; it cannot become dismissed" in text


def test_a_failed_delivery_is_retried_from_its_page(admin_client):
    # given
    delivery = _delivery("failed")
    assert 'data-action="retry"' in _page(admin_client, "notificationdelivery", delivery)

    # when
    response = _do(admin_client, "notificationdelivery", delivery, "retry")

    # then
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 6)
    assert _messages(response) == [(constants.SUCCESS, f"Delivery {delivery.pk}: delivered.")]


def test_a_delivered_delivery_offers_no_retry_and_a_forced_one_is_refused(admin_client):
    delivery = _delivery("delivered")
    assert 'data-action="retry"' not in _page(admin_client, "notificationdelivery", delivery)

    response = _do(admin_client, "notificationdelivery", delivery, "retry")

    [(level, _text)] = _messages(response)
    assert level == constants.ERROR
    assert NotificationDelivery.objects.get(pk=delivery.pk).status == "delivered"


def test_a_rule_page_links_to_its_dry_run(admin_client, tenant_entity):
    rule = make_rule()

    page = _page(admin_client, "automationrule", rule)

    dry_run = reverse("admin:automation_automationrule_dry_run", args=[rule.pk])
    assert f'href="{dry_run}" class="object-action" data-action="dry_run"' in page
    assert admin_client.get(dry_run).status_code == 200


def test_a_bulk_dismiss_the_service_refuses_is_red_and_not_counted_as_done(admin_client):
    # given: an alert already resolved
    alert = AlertFactory(status="resolved")

    # when
    response = admin_client.post(
        reverse("admin:automation_alert_changelist"),
        {"action": "dismiss", "_selected_action": [alert.pk]},
        follow=True,
    )

    # then: one error, no "0 alert(s) dismissed" success
    [(level, text)] = _messages(response)
    assert level == constants.ERROR
    assert "is resolved; it cannot become dismissed" in text
