"""Two deadline sweeps at once (issue 13): real threads, one connection each.
On PostgreSQL the sweeps truly overlap and ``SKIP LOCKED`` hands each
reminder to one of them; on SQLite the writers queue. Either way every
reminder is sent exactly once and every expired action moves once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.choices import ActionStatus, DeadlinePolicy
from approvals.models import PendingAction, PendingActionReminder
from approvals.services import pending_action_deadlines_sweep
from automation.models import NotificationDelivery
from tests.approvals.factories import in_flight_actions
from tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)

ACTIONS = 40


def test_concurrent_sweeps_send_each_reminder_once(requester):
    # given: 40 in-flight actions, each with a reminder due now, due tomorrow
    now = timezone.now()
    actions = in_flight_actions(ACTIONS, user=requester, action_type="operations.create_tenant")
    for action in actions:
        action.due_at = now + timedelta(days=1)
        action.deadline_policy = DeadlinePolicy.ESCALATE
        action.save(update_fields=["due_at", "deadline_policy"])
    PendingActionReminder.objects.bulk_create(
        PendingActionReminder(
            pending_action=action,
            before_deadline=timedelta(days=1, minutes=1),
            remind_at=now - timedelta(minutes=1),
        )
        for action in actions
    )

    # when: four sweeps at once, in small batches so they interleave
    results, errors = run_concurrently(
        lambda: pending_action_deadlines_sweep(now=now, batch_size=3), 4
    )

    # then: every reminder sent once, one in-app notification each, none twice
    assert errors == []
    assert sum(r["reminders_sent"] for r in results) == ACTIONS
    assert not PendingActionReminder.objects.filter(sent_at__isnull=True).exists()
    deliveries = list(NotificationDelivery.objects.values_list("payload", flat=True))
    assert len(deliveries) == ACTIONS
    assert len({d["data"]["pending_action_id"] for d in deliveries}) == ACTIONS
    # and a rerun sends nothing
    assert pending_action_deadlines_sweep(now=now)["reminders_sent"] == 0
    assert NotificationDelivery.objects.count() == ACTIONS


def test_concurrent_sweeps_expire_each_action_once(requester, knox):
    # given: 30 in-flight actions past their deadline (Knox knows them)
    now = timezone.now()
    actions = in_flight_actions(
        30, user=requester, action_type="operations.create_tenant", knox=knox
    )
    PendingAction.objects.filter(pk__in=[a.pk for a in actions]).update(
        due_at=now - timedelta(minutes=1), deadline_policy=DeadlinePolicy.WITHDRAW
    )

    # when
    results, errors = run_concurrently(
        lambda: pending_action_deadlines_sweep(now=now, batch_size=4), 3
    )

    # then: each expired once (one audited move), each withdrawn at Knox
    assert errors == []
    assert sum(r["expired"] for r in results) == 30
    for action in PendingAction.objects.all():
        assert action.status == ActionStatus.EXPIRED
        assert action.transitions.filter(to_status=ActionStatus.EXPIRED).count() == 1
        assert action.knox_withdrawn_at is not None
        assert knox.document(action.ap_inf_id)["status"] == 4
