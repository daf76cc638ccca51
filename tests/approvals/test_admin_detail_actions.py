"""Actions on a pending action's detail page (check status, retry, resubmit,
withdraw with confirmation): the same services and permission checks as the
bulk actions and the API; a failure is an error message, never a success."""

import pytest
from django.contrib.messages import constants, get_messages
from django.urls import reverse

from approvals.choices import ActionStatus, KnoxStatus
from approvals.models import PendingAction
from approvals.registry import any_requester, register_action_handler, unregister_action_handler
from approvals.services import ApprovalSubmitFailed
from operations import approval_handlers
from operations.models import Tenant
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, requester):
    requester.is_staff = requester.is_superuser = True
    requester.save()
    client.force_login(requester)
    return client


def _do(client, action: PendingAction, name: str, **data):
    url = reverse("admin:approvals_pendingaction_object_action", args=[action.pk, name])
    return client.post(url, data, follow=True)


def _messages(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in get_messages(response.wsgi_request)]


def _change_page(client, action) -> str:
    return client.get(reverse("admin:approvals_pendingaction_change", args=[action.pk])).text


def _fail_execution(knox, action) -> None:
    """Approved in Knox; the handler fails when the poller runs it."""
    from approvals.services import pending_actions_poll

    def failing(payload, *, pending_action):
        raise RuntimeError("downstream is down")

    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    unregister_action_handler("operations.create_tenant")
    register_action_handler("operations.create_tenant", failing, authorize=any_requester)
    try:
        pending_actions_poll()
    finally:
        unregister_action_handler("operations.create_tenant")
        approval_handlers.register()
    action.refresh_from_db()
    assert action.status == ActionStatus.FAILED


def test_check_status_on_the_detail_page_executes_an_approved_action(
    knox, admin_client, request_tenant
):
    # given: approved in Knox, not yet polled
    action = request_tenant("Checked")
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    assert "Check status in Knox" in _change_page(admin_client, action)

    # when
    response = _do(admin_client, action, "check_status")

    # then
    action.refresh_from_db()
    assert action.status == ActionStatus.EXECUTED
    assert _messages(response) == [(constants.SUCCESS, f"Pending action {action.pk}: executed.")]
    assert response.redirect_chain[-1][0].endswith(f"/{action.pk}/change/")


def test_withdraw_asks_for_confirmation_first(knox, admin_client, request_tenant):
    # given
    action = request_tenant("Withdrawn")
    url = reverse("admin:approvals_pendingaction_object_action", args=[action.pk, "withdraw"])

    # when: the button (a link to the question) and a POST without the confirmation
    assert f'href="{url}" class="object-action" data-action="withdraw"' in _change_page(
        admin_client, action
    )
    asked = admin_client.get(url)
    unconfirmed = admin_client.post(url)

    # then: a question, and nothing changed
    assert asked.status_code == unconfirmed.status_code == 200
    assert "Withdraw this approval request from Knox?" in asked.text
    action.refresh_from_db()
    assert action.status == ActionStatus.PENDING

    # when: confirmed
    response = _do(admin_client, action, "withdraw", confirmed="yes")

    # then
    action.refresh_from_db()
    assert action.status == ActionStatus.CANCELLED
    assert knox.document(action.ap_inf_id)["status"] == KnoxStatus.WITHDRAWN
    assert (constants.SUCCESS, f"Pending action {action.pk}: cancelled.") in _messages(response)


def test_a_retry_that_fails_again_is_an_error_message(knox, admin_client, request_tenant):
    # given: a failed execution, whose handler still fails
    action = request_tenant("Broken")
    _fail_execution(knox, action)
    assert "Retry execution" in _change_page(admin_client, action)

    def failing(payload, *, pending_action):
        raise RuntimeError("still down")

    unregister_action_handler("operations.create_tenant")
    register_action_handler("operations.create_tenant", failing, authorize=any_requester)
    try:
        # when
        response = _do(admin_client, action, "retry")
    finally:
        unregister_action_handler("operations.create_tenant")
        approval_handlers.register()

    # then: red, never green
    [(level, text)] = _messages(response)
    assert level == constants.ERROR
    assert text.startswith(f"Pending action {action.pk}: failed.")


def test_a_retry_on_the_detail_page_executes_a_failed_execution(knox, admin_client, request_tenant):
    # given
    action = request_tenant("Retried")
    _fail_execution(knox, action)

    # when
    response = _do(admin_client, action, "retry")

    # then
    assert _messages(response) == [(constants.SUCCESS, f"Pending action {action.pk}: executed.")]
    assert Tenant.objects.filter(name="Retried").exists()


def test_resubmit_is_offered_for_a_failed_submit_and_sends_it_again(
    knox, admin_client, request_tenant
):
    # given
    knox.faults(submit="error")
    with pytest.raises(ApprovalSubmitFailed):
        request_tenant("Again")
    knox.faults()
    action = PendingAction.objects.get()
    page = _change_page(admin_client, action)
    assert "Resubmit to Knox" in page
    assert "Retry execution" not in page

    # when
    response = _do(admin_client, action, "resubmit")

    # then
    action.refresh_from_db()
    assert action.status == ActionStatus.PENDING
    assert _messages(response) == [
        (constants.SUCCESS, f"Pending action {action.pk}: pending approval.")
    ]


def test_an_action_the_service_refuses_is_an_error_and_changes_nothing(
    knox, admin_client, request_tenant
):
    # given: a pending action (nothing to retry)
    action = request_tenant("Pending")

    # when: retry is posted anyway
    response = _do(admin_client, action, "retry")

    # then
    [(level, text)] = _messages(response)
    assert level == constants.ERROR
    assert "cannot" in text
    action.refresh_from_db()
    assert action.status == ActionStatus.PENDING


def test_a_viewer_without_the_permission_is_refused_by_the_service(knox, client, request_tenant):
    # given: staff who may view pending actions but not operate them, and not the requester
    from django.contrib.auth.models import Permission

    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_pendingaction"))
    action = request_tenant("Guarded")
    client.force_login(viewer)

    # when
    response = _do(client, action, "withdraw", confirmed="yes")

    # then: refused in red, still pending
    [(level, _text)] = _messages(response)
    assert level == constants.ERROR
    action.refresh_from_db()
    assert action.status == ActionStatus.PENDING


def test_an_unknown_action_is_not_found(admin_client, request_tenant, knox):
    action = request_tenant("Unknown")
    url = reverse("admin:approvals_pendingaction_object_action", args=[action.pk, "explode"])
    assert admin_client.post(url).status_code == 404
