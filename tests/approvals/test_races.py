"""Two pollers at once: real threads, one connection each. On PostgreSQL the
two cycles truly overlap and the row lock decides; on SQLite writers queue."""

import threading

import pytest

from approvals.choices import ActionStatus, KnoxStatus
from approvals.knox import get_knox_client
from approvals.models import PendingAction
from approvals.registry import (
    any_requester,
    register_action_handler,
    unregister_action_handler,
)
from approvals.services import (
    approval_request,
    pending_action_execute,
    pending_actions_poll,
)
from approvals.services.poll import pending_action_settle
from operations.models import Tenant
from tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def counting_handler(demo_workspace):
    calls = []
    lock = threading.Lock()

    def handler(payload, *, pending_action):
        with lock:
            calls.append(pending_action.pk)
        Tenant.objects.create(workspace=demo_workspace, name=f"made by {pending_action.pk}")
        return {"made": pending_action.pk}

    register_action_handler("test.counting", handler, authorize=any_requester)
    yield calls
    unregister_action_handler("test.counting")


def test_two_pollers_at_once_execute_each_approved_action_exactly_once(
    knox, requester, tenant_template, counting_handler
):
    actions = [
        approval_request(
            action_type="test.counting",
            payload={"n": n},
            title=f"Counting {n}",
            template_name=tenant_template.name,
            variables={"tenant_name": str(n), "workspace": "w"},
            approvers=["EP-BOSS-1"],
            user=requester,
        )
        for n in range(8)
    ]
    for action in actions:
        knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)

    _results, errors = run_concurrently(pending_actions_poll, 2)

    assert errors == []
    assert sorted(counting_handler) == sorted(a.pk for a in actions)
    assert Tenant.objects.filter(name__startswith="made by").count() == len(actions)
    assert set(PendingAction.objects.values_list("status", flat=True)) == {ActionStatus.EXECUTED}


def test_many_concurrent_executions_of_one_action_run_the_handler_once(
    knox, requester, tenant_template, counting_handler
):
    action = approval_request(
        action_type="test.counting",
        payload={"n": 1},
        title="Once",
        template_name=tenant_template.name,
        variables={"tenant_name": "1", "workspace": "w"},
        approvers=["EP-BOSS-1"],
        user=requester,
    )
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    # Only the "approved" step of a poll, so the threads below race to execute.
    report = get_knox_client().statuses([action.ap_inf_id])[action.ap_inf_id]
    pending_action_settle(pending_action_id=action.pk, report=report, submitted=True)

    _results, errors = run_concurrently(
        lambda: pending_action_execute(ap_inf_id=action.ap_inf_id), 6
    )

    assert errors == []
    assert counting_handler == [action.pk]
    action.refresh_from_db()
    assert action.status == ActionStatus.EXECUTED
    assert action.transitions.filter(to_status=ActionStatus.EXECUTED).count() == 1


def test_concurrent_executions_of_an_action_left_approved_run_the_handler_once(
    knox, requester, tenant_template, counting_handler
):
    # given: an action approved in Knox whose handler has not run. The services
    # never commit this state (approval and execution share a transaction), so
    # the row is put there directly, as a crash in an older version could leave it.
    action = approval_request(
        action_type="test.counting",
        payload={"n": 2},
        title="Left approved",
        template_name=tenant_template.name,
        variables={"tenant_name": "2", "workspace": "w"},
        approvers=["EP-BOSS-1"],
        user=requester,
    )
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    PendingAction.objects.filter(pk=action.pk).update(status=ActionStatus.APPROVED)

    # when: six executions race for it
    results, errors = run_concurrently(
        lambda: pending_action_execute(ap_inf_id=action.ap_inf_id), 6
    )

    # then: the row lock lets one run the handler; the others find it executed
    assert errors == []
    assert counting_handler == [action.pk]
    assert {r.status for r in results} == {ActionStatus.EXECUTED}
    assert action.transitions.filter(to_status=ActionStatus.EXECUTING).count() == 1
    assert action.transitions.filter(to_status=ActionStatus.EXECUTED).count() == 1
