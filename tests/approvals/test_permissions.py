"""Issue 8, item 4: who may check, withdraw, retry and resubmit a pending
action is decided by the services, so the admin, the REST API and the
commands agree. The requester may check and withdraw their own; anything
else needs the "operate pending actions" permission; commands act as the
system. Knox is the real simulator process."""

import pytest
from django.contrib.messages import constants, get_messages
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from approvals.choices import ActionStatus, KnoxStatus
from approvals.models import PendingAction
from approvals.registry import any_requester, register_action_handler, unregister_action_handler
from approvals.services import (
    ApprovalSubmitFailed,
    approval_request,
    pending_action_retry,
    pending_action_withdraw,
    pending_actions_poll,
)
from config.errors import Forbidden, NotFound
from tests.approvals.factories import staff_with
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:approvals_pendingaction_changelist"
API = "/api/v1/approvals/pending-actions"


def _admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _messages(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in get_messages(response.wsgi_request)]


def _state(action) -> tuple:
    action.refresh_from_db()
    return action.status, action.transitions.count(), action.approval_log.knox_status


@pytest.fixture
def viewer():
    """Staff holding only the view permission on pending actions."""
    return staff_with("approvals.view_pendingaction")


@pytest.fixture
def operator():
    return staff_with("approvals.view_pendingaction", "approvals.operate_pendingaction")


@pytest.mark.parametrize("admin_action", ["withdraw_action_", "check_status_now"])
def test_view_only_staff_get_an_error_in_the_admin_and_nothing_changes(
    knox, request_tenant, viewer, admin_action
):
    # given: someone else's action, approved in Knox (a check would execute it)
    action = request_tenant("Initech")
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    before = _state(action)

    # when
    response = _admin(viewer).post(
        reverse(CHANGELIST), {"action": admin_action, "_selected_action": [action.pk]}, follow=True
    )

    # then: an error naming the permission; the action, its history and Knox unchanged
    assert response.status_code == 200
    [(level, text)] = _messages(response)
    assert level == constants.ERROR
    assert "You may not" in text and "permission to operate pending actions" in text
    assert _state(action) == before
    assert knox.document(action.ap_inf_id)["status"] == KnoxStatus.COMPLETE


def test_retry_and_resubmit_are_not_offered_without_the_permission(knox, request_tenant, viewer):
    action = request_tenant("Initech")
    before = _state(action)

    page = _admin(viewer).get(reverse(CHANGELIST)).content.decode()
    response = _admin(viewer).post(
        reverse(CHANGELIST),
        {"action": "retry_execution_action", "_selected_action": [action.pk]},
        follow=True,
    )

    assert 'value="withdraw_action_"' in page
    assert 'value="retry_execution_action"' not in page
    assert 'value="resubmit_action_"' not in page
    assert _state(action) == before
    assert all(level != constants.SUCCESS for level, _ in _messages(response))


def test_the_api_answers_view_only_staff_the_same_way(knox, request_tenant, viewer):
    action = request_tenant("Initech")
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    before = _state(action)

    refresh = _api(viewer).post(f"{API}/{action.pk}/refresh/")
    retry = _api(viewer).post(f"{API}/{action.pk}/retry/")

    assert refresh.status_code == retry.status_code == 403
    assert refresh.data["code"] == retry.data["code"] == "approvals.not_allowed"
    assert _state(action) == before


def test_someone_who_cannot_see_the_action_gets_a_404_from_every_door(knox, request_tenant):
    action = request_tenant("Initech")
    stranger = UserFactory()

    assert _api(stranger).post(f"{API}/{action.pk}/refresh/").status_code == 404
    assert _api(stranger).post(f"{API}/{action.pk}/retry/").status_code == 404
    with pytest.raises(NotFound) as error:
        pending_action_withdraw(pending_action_id=action.pk, actor=stranger)
    assert error.value.message == f"No pending action with id {action.pk}."


def test_the_requester_may_check_and_withdraw_their_own_but_not_retry(
    knox, requester, request_tenant
):
    action = request_tenant("Initech")

    assert _api(requester).post(f"{API}/{action.pk}/refresh/").status_code == 200
    assert _api(requester).post(f"{API}/{action.pk}/retry/").status_code == 403
    withdrawn = pending_action_withdraw(pending_action_id=action.pk, actor=requester)

    assert withdrawn.status == ActionStatus.CANCELLED


@pytest.fixture
def failing_once(db, demo_workspace):
    calls = []

    def handler(payload, *, pending_action):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("downstream is down")
        return {"ok": True}

    register_action_handler("test.failing_once", handler, authorize=any_requester)
    yield
    unregister_action_handler("test.failing_once")


def _failed_execution(knox, requester, template):
    action = approval_request(
        action_type="test.failing_once",
        payload={"n": 1},
        title="Once",
        template_name=template.name,
        variables={"tenant_name": "x", "workspace": "y"},
        approvers=["EP-BOSS-1"],
        user=requester,
    )
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    pending_actions_poll()
    action.refresh_from_db()
    assert action.status == ActionStatus.FAILED
    return action


def test_the_operate_permission_allows_retry_everywhere(
    knox, requester, tenant_template, failing_once, viewer, operator
):
    action = _failed_execution(knox, requester, tenant_template)

    with pytest.raises(Forbidden):
        pending_action_retry(pending_action_id=action.pk, actor=viewer)
    response = _admin(operator).post(
        reverse(CHANGELIST),
        {"action": "retry_execution_action", "_selected_action": [action.pk]},
        follow=True,
    )

    action.refresh_from_db()
    assert action.status == ActionStatus.EXECUTED
    assert _messages(response) == [(constants.SUCCESS, f"{action.pk}: executed")]
    assert action.transitions.filter(actor=operator).exists()


def test_the_operate_permission_allows_resubmit_in_the_admin(knox, request_tenant, operator):
    knox.faults(submit="error")
    with pytest.raises(ApprovalSubmitFailed):
        request_tenant("Again")
    knox.faults()
    action = PendingAction.objects.get()

    response = _admin(operator).post(
        reverse(CHANGELIST),
        {"action": "resubmit_action_", "_selected_action": [action.pk]},
        follow=True,
    )

    action.refresh_from_db()
    assert action.status == ActionStatus.PENDING
    assert _messages(response) == [(constants.SUCCESS, f"{action.pk}: pending")]
    assert knox.document(action.ap_inf_id) is not None


def test_commands_act_as_the_system(knox, requester, tenant_template, failing_once):
    action = _failed_execution(knox, requester, tenant_template)

    call_command("approvals_retry", str(action.pk))

    action.refresh_from_db()
    assert action.status == ActionStatus.EXECUTED
    assert action.transitions.last().actor_name == "system"
