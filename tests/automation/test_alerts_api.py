"""/api/v1/alerts/: my alerts, and acknowledgement per recipient; only a
recipient (the user, or a member of a recipient role) may act."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from automation.models import Alert, AlertAcknowledgement
from automation.selectors import alerts_mine
from tests.automation.factories import AlertFactory, AlertRecipientFactory, GroupFactory
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db


def _client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def people():
    alice = UserFactory(username="alice")
    bob = UserFactory(username="bob")
    stranger = UserFactory(username="stranger")
    role = GroupFactory(name="ops")
    bob.groups.add(role)
    return alice, bob, stranger, role


def _alert_for(*, user=None, group=None, **fields):
    alert = AlertFactory(**fields)
    if user is not None:
        AlertRecipientFactory(alert=alert, recipient_type="user", user=user)
    if group is not None:
        AlertRecipientFactory(alert=alert, recipient_type="role", group=group)
    return alert


def test_mine_lists_my_alerts_and_those_of_my_roles_hiding_expired_ones(people):
    alice, bob, stranger, role = people
    direct = _alert_for(user=bob, severity="high")
    via_role = _alert_for(group=role, severity="low")
    _alert_for(user=alice)
    _alert_for(user=bob, expires_date=timezone.now() - timedelta(minutes=1))
    future = _alert_for(user=bob, expires_date=timezone.now() + timedelta(hours=1))

    everything = _client(bob).get("/api/v1/alerts/mine/")
    high = _client(bob).get("/api/v1/alerts/mine/", {"severity": "high"})

    assert everything.status_code == 200
    assert {a["id"] for a in everything.data["results"]} == {direct.pk, via_role.pk, future.pk}
    assert [a["id"] for a in high.data["results"]] == [direct.pk]
    assert _client(stranger).get("/api/v1/alerts/mine/").data["results"] == []


def test_a_non_recipient_gets_a_404_and_changes_nothing(people):
    alice, _bob, stranger, _role = people
    alert = _alert_for(user=alice)

    ack = _client(stranger).post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {}, format="json")
    dismiss = _client(stranger).post(f"/api/v1/alerts/{alert.pk}/dismiss/", {}, format="json")

    assert ack.status_code == 404 and dismiss.status_code == 404
    assert ack.data["code"] == "not_found" or ack.data["code"] == "automation.no_alert"
    assert not AlertAcknowledgement.objects.exists()
    alert.refresh_from_db()
    assert alert.status == "active"


def test_a_member_of_a_recipient_role_acknowledges_for_themself(people):
    alice, bob, _stranger, role = people
    alice.groups.add(role)
    alert = _alert_for(group=role)

    response = _client(bob).post(
        f"/api/v1/alerts/{alert.pk}/acknowledge/", {"notes": "on it"}, format="json"
    )
    again = _client(bob).post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {}, format="json")

    assert response.status_code == 200 and again.status_code == 200
    ack = AlertAcknowledgement.objects.get()
    assert (ack.acknowledged_by, ack.kind, ack.notes) == (bob, "acknowledged", "on it")
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    # acknowledgement is per recipient: alice still has it to do
    mine_bob = _client(bob).get("/api/v1/alerts/mine/", {"status": "acknowledged"}).data["results"]
    mine_alice = _client(alice).get("/api/v1/alerts/mine/", {"status": "active"}).data["results"]
    assert [a["id"] for a in mine_bob] == [alert.pk] and [a["id"] for a in mine_alice] == [alert.pk]


def test_dismiss_then_acknowledge_is_a_409_with_the_current_state(people):
    alice, *_ = people
    alert = _alert_for(user=alice)

    dismissed = _client(alice).post(f"/api/v1/alerts/{alert.pk}/dismiss/", {}, format="json")
    refused = _client(alice).post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {}, format="json")

    assert dismissed.status_code == 200 and dismissed.data["kind"] == "dismissed"
    assert refused.status_code == 409 and refused.data["current_state"] == "dismissed"


def test_a_resolved_alert_cannot_be_acknowledged(people):
    alice, *_ = people
    alert = _alert_for(user=alice, status="resolved")

    response = _client(alice).post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {}, format="json")

    assert response.status_code == 409 and response.data["current_state"] == "resolved"


def test_acknowledge_selected_is_all_or_nothing(people):
    alice, _bob, _stranger, _role = people
    mine = [_alert_for(user=alice), _alert_for(user=alice)]
    not_mine = AlertFactory()

    refused = _client(alice).post(
        "/api/v1/alerts/acknowledge-selected/", {"ids": [mine[0].pk, not_mine.pk]}, format="json"
    )
    assert refused.status_code == 404
    assert not AlertAcknowledgement.objects.exists()

    done = _client(alice).post(
        "/api/v1/alerts/acknowledge-selected/", {"ids": [a.pk for a in mine]}, format="json"
    )
    assert done.status_code == 200
    assert done.data == {"acknowledged": sorted(a.pk for a in mine), "refused": []}
    assert set(
        Alert.objects.filter(pk__in=[a.pk for a in mine]).values_list("status", flat=True)
    ) == {"acknowledged"}


def test_bad_input_is_a_400(people):
    alice, *_ = people

    assert (
        _client(alice)
        .post("/api/v1/alerts/acknowledge-selected/", {"ids": []}, format="json")
        .status_code
        == 400
    )
    assert _client(alice).get("/api/v1/alerts/mine/", {"status": "sleeping"}).status_code == 400
    assert APIClient().get("/api/v1/alerts/mine/").status_code == 401


def test_mine_answers_my_own_state_as_status_and_the_alert_wide_one_as_alert_status(people):
    # given: an alert for alice and bob, acknowledged by alice only
    alice, bob, _stranger, _role = people
    alert = _alert_for(user=alice)
    AlertRecipientFactory(alert=alert, recipient_type="user", user=bob)
    _client(alice).post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {}, format="json")

    # when: each reads their alerts
    bob_sees = _client(bob).get("/api/v1/alerts/mine/").data["results"][0]
    alice_sees = _client(alice).get("/api/v1/alerts/mine/").data["results"][0]

    # then: status is the reader's own state; alert_status the alert-wide one
    assert (bob_sees["status"], bob_sees["alert_status"]) == ("active", "acknowledged")
    assert (alice_sees["status"], alice_sees["alert_status"]) == ("acknowledged", "acknowledged")
    assert "my_status" not in bob_sees


def test_the_schema_declares_mine_as_a_page_of_alerts_with_both_states(people):
    alice, *_ = people

    schema = json.loads(
        _client(alice)
        .get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        .content
    )

    answer = schema["paths"]["/api/v1/alerts/mine/"]["get"]["responses"]["200"]
    page = answer["content"]["application/json"]["schema"]
    page = schema["components"]["schemas"][page["$ref"].rsplit("/", 1)[1]]
    assert page["type"] == "object"
    assert {"count", "next", "previous", "results"} <= set(page["properties"])
    assert page["properties"]["results"]["items"]["$ref"] == "#/components/schemas/Alert"
    alert = schema["components"]["schemas"]["Alert"]["properties"]
    assert {"status", "alert_status"} <= set(alert) and "my_status" not in alert
    rule = schema["components"]["schemas"]["Rule"]["properties"]
    assert rule["deactivated_by"].get("nullable") is True


def test_mine_lists_an_alert_once_without_distinct_however_i_am_named(people):
    # given: an alert naming bob, bob again, and two roles of his
    _, bob, _, role = people
    second_role = GroupFactory(name="on-call")
    bob.groups.add(second_role)
    alert = _alert_for(user=bob, group=role)
    AlertRecipientFactory(alert=alert, recipient_type="user", user=bob)
    AlertRecipientFactory(alert=alert, recipient_type="role", group=second_role)

    # when
    page = _client(bob).get("/api/v1/alerts/mine/").data

    # then: once, counted once, by a semi-join (no DISTINCT over wide alert rows)
    assert [a["id"] for a in page["results"]] == [alert.pk]
    assert page["count"] == 1
    assert "DISTINCT" not in str(alerts_mine(bob).query).upper()
