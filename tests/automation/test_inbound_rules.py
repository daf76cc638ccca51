"""Rules on the inbound trigger: a source is the rule's entity, its
conditions and placeholders name the posted JSON's fields (dotted for nested
ones); such rules are checked when saved, kept as versions, backtested over
the events the source received, and run from the outbox like any rule — also
end to end through a real server, the command and a real django-q2 cluster."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client
from django_q.conf import Conf
from rest_framework.test import APIClient

from automation.entities import INBOUND_PAYLOAD, PayloadValues, field_names
from automation.models import Alert, AutomationEvent, AutomationExecution, RuleVersion
from automation.services import Window, rule_backtest
from tests.automation.factories import (
    INBOUND_SECRET,
    INBOUND_SECRET_SETTING,
    inbound_alert_action,
    inbound_source,
    make_rule,
    signed_post,
    update_field_action,
)
from tests.live_server import free_port, start_manage, stop_process, wait_for_http, wait_until
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/automation/inbound/shop/"
RULES = "/api/v1/automation/rules/"
BIG_PAID = [
    {"field_name": "type", "operator": "equals", "value": "order.paid"},
    {"field_name": "data.amount", "operator": "greater_than", "value": 1000},
]


@pytest.fixture
def shop(inbound_secret, entities):
    return inbound_source(slug="shop")


@pytest.fixture
def admin_api(db):
    client = APIClient()
    client.force_authenticate(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def _post(payload, key):
    body, headers = signed_post(payload, key=key)
    return Client().post(URL, data=body, content_type="application/json", headers=headers)


def test_payload_values_are_read_by_path():
    values = PayloadValues({"type": "a", "data": {"amount": 5, "items": [{"sku": "X"}]}, "a.b": 1})
    assert values.get("type") == "a"
    assert values.get("data.amount") == 5
    assert values.get("data.items.0.sku") == "X"
    assert values.get("a.b") == 1  # a key holding the whole path wins
    assert values.get("data.missing") is None and values.get("data.items.3.sku") is None
    assert "data.amount" in field_names(INBOUND_PAYLOAD)
    assert "bad path!" not in field_names(INBOUND_PAYLOAD)


def test_a_rule_on_a_posted_field_creates_an_alert_from_the_drained_outbox(
    shop, django_capture_on_commit_callbacks
):
    # given: a rule on the source: big paid orders raise an alert
    operator = UserFactory(username="operator")
    rule = make_rule(
        name="big order",
        entity="inbound:shop",
        trigger="inbound",
        conditions=BIG_PAID,
        actions=[inbound_alert_action(recipients={"users": ["operator"]})],
    )

    # when: a small order and a big one are posted (the outbox drains on commit)
    with django_capture_on_commit_callbacks(execute=True):
        small = _post({"type": "order.paid", "data": {"order_id": "A1", "amount": 20}}, "evt-1")
    with django_capture_on_commit_callbacks(execute=True):
        big = _post({"type": "order.paid", "data": {"order_id": "B2", "amount": 5000}}, "evt-2")

    # then: both events processed, one alert, about the big one
    assert small.status_code == big.status_code == 202
    assert set(AutomationEvent.objects.values_list("status", flat=True)) == {"processed"}
    alert = Alert.objects.get()
    assert alert.title == "Order B2 paid: 5000"
    assert alert.message == "Event evt-2 of type order.paid."
    assert (alert.source_entity_name, alert.source_entity_id) == ("inbound:shop", "evt-2")
    assert list(alert.recipients.values_list("user", flat=True)) == [operator.pk]
    execution = AutomationExecution.objects.get()
    assert (execution.rule, execution.rule_version) == (rule, rule.version)
    assert execution.event_id == big.json()["event"]


def test_a_missing_posted_field_reads_as_null(shop, django_capture_on_commit_callbacks):
    # given: a rule for posts without a customer
    make_rule(
        entity="inbound:shop",
        trigger="inbound",
        conditions=[{"field_name": "data.customer", "operator": "is_null"}],
        actions=[
            inbound_alert_action(title="No customer on {{data.order_id}} ({{data.customer}})")
        ],
    )

    # when
    with django_capture_on_commit_callbacks(execute=True):
        _post({"type": "order.paid", "data": {"order_id": "C3"}}, "evt-3")

    # then
    assert Alert.objects.get().title == "No customer on C3 ()"


def test_an_inbound_rule_through_the_api_is_checked_and_versioned(shop, admin_api):
    # given
    body = {
        "name": "big orders",
        "entity": "inbound:shop",
        "trigger_type": "inbound",
        "trigger_conditions": {"field_conditions": BIG_PAID},
        "actions": [inbound_alert_action(recipients={"users": ["root"]})],
    }

    # when
    created = admin_api.post(RULES, body, format="json")

    # then
    assert created.status_code == 201, created.content
    version = RuleVersion.objects.get(rule_id=created.json()["id"])
    assert version.definition["entity"] == "inbound:shop"
    assert version.definition["trigger_type"] == "inbound"


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"trigger_type": "on_update"}, "trigger_type", "its rules use the inbound trigger"),
        (
            {"entity": "operations_tenant"},
            "trigger_type",
            "The inbound trigger is for inbound sources",
        ),
        (
            {
                "trigger_conditions": {
                    "field_conditions": [{"field_name": "no way", "operator": "equals", "value": 1}]
                }
            },
            "trigger_conditions",
            "is not a field path",
        ),
        (
            {"actions": [update_field_action("type", "x")]},
            "actions",
            "there is no field to update",
        ),
        (
            {
                "actions": [
                    inbound_alert_action(title="{{data..amount}}", recipients={"users": ["root"]})
                ]
            },
            "actions",
            "unknown placeholder",
        ),
    ],
)
def test_a_rule_that_cannot_work_on_a_source_is_a_400(shop, admin_api, change, field, message):
    # given
    body = {
        "name": "r",
        "entity": "inbound:shop",
        "trigger_type": "inbound",
        "actions": [inbound_alert_action(recipients={"users": ["root"]})],
        **change,
    }

    # when
    answer = admin_api.post(RULES, body, format="json")

    # then
    assert answer.status_code == 400, answer.content
    assert message in " ".join(answer.json()[field]), answer.json()


def test_time_conditions_on_posted_dates_are_accepted(shop):
    # given/when: a posted date compared with a relative interval (evaluated on the event)
    rule = make_rule(
        entity="inbound:shop",
        trigger="inbound",
        conditions=[{"field_name": "data.due", "operator": "older_than", "value": "7d"}],
    )

    # then
    assert rule.pk is not None


def test_a_dry_run_of_an_inbound_rule_points_to_the_backtest(shop, admin_api):
    # given
    rule = make_rule(entity="inbound:shop", trigger="inbound")

    # when
    answer = admin_api.post(
        f"{RULES}{rule.pk}/dry-run/", {"entity": "inbound:shop", "id": "evt-1"}, format="json"
    )

    # then
    assert answer.status_code == 400
    assert answer.json()["code"] == "automation.dry_run_inbound"
    assert "Backtest" in answer.json()["detail"]


def test_a_backtest_matches_the_events_the_source_received(
    shop, admin_api, django_capture_on_commit_callbacks
):
    # given: three posts received while a rule on big orders ran
    rule = make_rule(
        entity="inbound:shop",
        trigger="inbound",
        conditions=BIG_PAID,
        actions=[inbound_alert_action()],
    )
    for key, amount in [("e1", 5000), ("e2", 10), ("e3", 2000)]:
        with django_capture_on_commit_callbacks(execute=True):
            _post({"type": "order.paid", "data": {"order_id": key, "amount": amount}}, key)
    alerts = Alert.objects.count()

    # when: the saved rule, and an unsaved one with a lower bar, are backtested
    saved = rule_backtest(actor=None, rule=rule, window=Window.of(days=1))
    unsaved = admin_api.post(
        f"{RULES}backtest/",
        {
            "definition": {
                "name": "lower bar",
                "entity": "inbound:shop",
                "trigger_type": "inbound",
                "trigger_conditions": {
                    "field_conditions": [
                        {"field_name": "data.amount", "operator": "greater_than", "value": 1}
                    ]
                },
                "actions": [inbound_alert_action(recipients={"users": ["root"]})],
            },
            "days": 1,
        },
        format="json",
    )

    # then
    assert (saved["events_scanned"], saved["matched"]) == (3, 2)
    assert {m["id"] for m in saved["sample"]} == {"e1", "e3"}
    assert saved["actual"]["this_rule"]["executions"] == 2
    assert saved["actual"]["this_rule"]["matched_not_executed"] == 0
    preview = saved["sample"][0]["actions"][0]
    assert preview["would"]["would_create_alert"]["title"] == "Order e1 paid: 5000"
    assert unsaved.status_code == 200, unsaved.content
    assert unsaved.json()["matched"] == 3
    assert Alert.objects.count() == alerts  # nothing written


@pytest.mark.django_db(transaction=True)
def test_end_to_end_the_command_posts_to_a_real_server_and_a_real_cluster_raises_the_alert(
    inbound_secret, qcluster, monkeypatch, capsys
):
    # given: tasks go to the real broker; a source, a rule on it, and a real server
    # holding the source's secret in its environment
    from automation.entities import entities_sync

    monkeypatch.setattr(Conf, "SYNC", False)
    entities_sync()
    inbound_source(slug="shop")
    UserFactory(username="operator")
    make_rule(
        entity="inbound:shop",
        trigger="inbound",
        conditions=BIG_PAID,
        actions=[inbound_alert_action(recipients={"users": ["operator"]})],
    )
    port = free_port()
    server = start_manage(
        "runserver",
        f"127.0.0.1:{port}",
        "--noreload",
        AUTOMATION_INBOUND_SECRETS=INBOUND_SECRET_SETTING,
        **{INBOUND_SECRET_SETTING: INBOUND_SECRET},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", process=server, timeout=60)

        # when: an operator sends a test event with the command
        call_command(
            "automation_inbound",
            "send",
            "shop",
            "--json",
            '{"type": "order.paid", "data": {"order_id": "Z9", "amount": 9000}}',
            "--url",
            url,
            "--key",
            "wiring-check-1",
        )

        # then: accepted by the server, drained by the cluster, the alert raised
        assert "accepted: event" in capsys.readouterr().out
        assert wait_until(lambda: Alert.objects.exists(), timeout=60, process=qcluster)
    finally:
        print(stop_process(server))
    alert = Alert.objects.get()
    assert alert.title == "Order Z9 paid: 9000"
    assert alert.source_entity_id == "wiring-check-1"
    assert AutomationEvent.objects.get().status == "processed"


def test_an_inbound_rule_opens_in_the_console_with_its_conditions(shop, client):
    # given: a rule on the source, made through the service
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    rule = make_rule(
        name="big order",
        entity="inbound:shop",
        trigger="inbound",
        conditions=BIG_PAID,
        actions=[inbound_alert_action(recipients={"users": ["root"]})],
    )
    client.force_login(root)

    # when: its page, and a new rule's page (where the source is one of the entities)
    page = client.get(f"/admin/automation/automationrule/{rule.pk}/change/")
    new = client.get("/admin/automation/automationrule/add/")

    # then: both render; the posted-field paths are on the rule's page
    assert (page.status_code, new.status_code) == (200, 200)
    text = page.content.decode()
    assert "data.amount" in text and "order.paid" in text
    assert "inbound:shop" in new.content.decode() or "Shop" in new.content.decode()
