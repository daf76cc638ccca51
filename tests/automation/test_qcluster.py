"""End to end through a real django-q2 cluster: a change committed in this
process queues the outbox task, a real ``qcluster`` process runs the rule,
and the alert and the in-app delivery appear."""

import time

import pytest
from django_q.conf import Conf

from automation.entities import entities_sync
from automation.models import Alert, AutomationEvent, NotificationDelivery
from tests.automation.factories import alert_action, make_rule
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_committed_change_is_processed_by_a_real_cluster(qcluster, monkeypatch):
    # given: tasks go to the real broker (not run inline), and a rule with two actions
    monkeypatch.setattr(Conf, "SYNC", False)
    entities_sync()
    operator = UserFactory(username="operator")
    make_rule(
        name="renamed",
        actions=[
            alert_action(order=1, recipients={"users": ["operator"]}),
            {
                "name": "tell",
                "action_type": "send_notification",
                "execution_order": 2,
                "action_config": {
                    "channels": ["in_app"],
                    "recipients": {"users": ["operator"]},
                    "message": "{{name}} renamed",
                },
            },
        ],
    )
    tenant = TenantFactory(name="Old")

    # when: a change commits (autocommit here)
    tenant.name = "New"
    tenant.save()

    # then: the cluster processes the event and sends the delivery
    deadline = time.monotonic() + 60
    delivery = None
    while time.monotonic() < deadline:
        assert qcluster.poll() is None, "qcluster died"
        delivery = NotificationDelivery.objects.filter(status="delivered").first()
        if delivery is not None:
            break
        time.sleep(0.25)
    assert delivery is not None, "the cluster did not process the event within 60s"
    assert delivery.recipient_user == operator and delivery.payload["message"] == "New renamed"
    assert Alert.objects.get().title == "Tenant New changed"
    assert AutomationEvent.objects.get().status == "processed"
