from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from approvals.choices import ActionStatus, KnoxStatus
from approvals.models import ApprovalTemplate, KnoxProfile, PendingAction
from operations.models import Tenant
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, requester):
    requester.is_staff = requester.is_superuser = True
    requester.save()
    client.force_login(requester)
    return client


def _call(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_request_check_and_withdraw_from_the_admin(
    knox, admin_client, demo_workspace, tenant_template
):
    # given: a request made through the console form
    response = admin_client.post(
        reverse("admin:approvals_pendingaction_request"),
        {
            "shown_for": f"{tenant_template.pk}|operations.create_tenant",
            "action_type": "operations.create_tenant",
            "template": tenant_template.pk,
            "title": "From the console",
            "variable__tenant_name": "Console",
            "variable__workspace": "acme",
            "payload__workspace": "acme",
            "payload__name": "Console",
            "approvers": "EP-BOSS-1, EP-BOSS-2",
        },
    )
    action = PendingAction.objects.get()
    assert response.status_code == 302
    assert [a["epId"] for a in knox.document(action.ap_inf_id)["aplns"]] == [
        "EP-REQ-1",
        "EP-BOSS-1",
        "EP-BOSS-2",
    ]

    # when: withdrawn
    changelist = reverse("admin:approvals_pendingaction_changelist")
    admin_client.post(changelist, {"action": "withdraw_action_", "_selected_action": [action.pk]})

    # then
    action.refresh_from_db()
    assert action.status == ActionStatus.CANCELLED
    assert knox.document(action.ap_inf_id)["status"] == KnoxStatus.WITHDRAWN
    page = admin_client.get(
        reverse("admin:approvals_pendingaction_change", args=[action.pk])
    ).content.decode()
    assert "withdrawn by requester" in page


def test_the_request_form_shows_field_errors_and_writes_nothing(
    knox, admin_client, tenant_template
):
    response = admin_client.post(
        reverse("admin:approvals_pendingaction_request"),
        {
            "shown_for": f"{tenant_template.pk}|operations.create_tenant",
            "action_type": "operations.create_tenant",
            "template": tenant_template.pk,
            "title": "Bad",
            "variable__tenant_name": "x",
            "variable__workspace": "acme",
            "payload__workspace": "acme",
            "payload__name": "",
            "approvers": "EP-BOSS-1",
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors["payload__name"] == ["This field is required."]
    assert not PendingAction.objects.exists()


def test_check_status_now_executes_an_approved_action(knox, admin_client, request_tenant):
    action = request_tenant("Checked")
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)

    admin_client.post(
        reverse("admin:approvals_pendingaction_changelist"),
        {"action": "check_status_now", "_selected_action": [action.pk]},
    )

    action.refresh_from_db()
    assert action.status == ActionStatus.EXECUTED


def test_template_preview_renders_the_sample_variables(admin_client, tenant_template):
    page = admin_client.get(
        reverse("admin:approvals_approvaltemplate_change", args=[tenant_template.pk])
    )

    assert "New tenant Example" in page.content.decode()


def test_template_form_requires_a_sample_for_every_variable(admin_client):
    response = admin_client.post(
        reverse("admin:approvals_approvaltemplate_add"),
        {"name": "T", "content": "{{a}} {{b}}", "sample_variables": '{"a": 1}', "is_active": "on"},
    )

    assert "Give a sample value for: b" in response.content.decode()
    assert not ApprovalTemplate.objects.filter(name="T").exists()


def test_ep_id_is_edited_inline_on_the_user(admin_client):
    user = UserFactory(username="kim")

    page = admin_client.get(reverse("admin:auth_user_change", args=[user.pk])).content.decode()

    assert "Knox EP ID" in page


def _user_page(user, *, ep_id: str, first_name: str) -> dict[str, str]:
    """The user admin's change form as the browser posts it, with the Knox inline."""
    joined = timezone.localtime(user.date_joined)
    profile = KnoxProfile.objects.filter(user=user).first()
    return {
        "username": user.username,
        "first_name": first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "knox_profile-TOTAL_FORMS": "1",
        "knox_profile-INITIAL_FORMS": "1" if profile else "0",
        "knox_profile-MIN_NUM_FORMS": "0",
        "knox_profile-MAX_NUM_FORMS": "1",
        "knox_profile-0-id": str(profile.pk) if profile else "",
        "knox_profile-0-user": str(user.pk),
        "knox_profile-0-ep_id": ep_id,
    }


def test_an_ep_id_set_inline_on_the_user_is_saved_through_the_service(admin_client):
    # given
    user = UserFactory(username="kim")
    url = reverse("admin:auth_user_change", args=[user.pk])

    # when: set, then changed
    first = admin_client.post(url, _user_page(user, ep_id=" EP-KIM-1 ", first_name="Kim"))
    second = admin_client.post(url, _user_page(user, ep_id="EP-KIM-2", first_name="Kim"))

    # then
    assert first.status_code == second.status_code == 302
    assert KnoxProfile.objects.get(user=user).ep_id == "EP-KIM-2"
    assert KnoxProfile.objects.filter(user=user).count() == 1


def test_a_duplicate_ep_id_on_the_user_page_is_an_error_and_nothing_is_written(
    admin_client, requester
):
    # given: requester holds EP-REQ-1; kim has no EP ID yet
    user = UserFactory(username="kim", first_name="Kim")
    url = reverse("admin:auth_user_change", args=[user.pk])

    # when: kim's page is saved with a new first name and requester's EP ID
    response = admin_client.post(url, _user_page(user, ep_id="EP-REQ-1", first_name="Changed"))

    # then: the page comes back with the error, and neither the user nor a profile is written
    assert response.status_code == 200
    assert "Knox profile with this Knox EP ID already exists." in response.content.decode()
    user.refresh_from_db()
    assert user.first_name == "Kim"
    assert not KnoxProfile.objects.filter(user=user).exists()
    assert KnoxProfile.objects.get(ep_id="EP-REQ-1").user == requester


def test_ep_ids_are_unique(requester):
    from django.core.exceptions import ValidationError

    from approvals.services import knox_profile_set

    with pytest.raises(ValidationError):
        knox_profile_set(user=UserFactory(), ep_id="EP-REQ-1")
    knox_profile_set(user=UserFactory(), ep_id="")  # several users may have none
    knox_profile_set(user=UserFactory(), ep_id=None)
    assert KnoxProfile.objects.filter(ep_id__isnull=True).count() == 2


def test_approvals_poll_prints_the_counts(knox, request_tenant):
    action = request_tenant("Polled")
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)

    output = _call("approvals_poll")

    assert "checked 1, updated 1, executed 1" in output
    assert Tenant.objects.filter(name="Polled").exists()


def test_approvals_check_and_its_errors(knox, request_tenant):
    action = request_tenant()

    assert f"pending action {action.pk}: pending (Knox status 1)" in _call(
        "approvals_check", action.ap_inf_id
    )
    with pytest.raises(CommandError, match="No pending action with apInfId nope"):
        _call("approvals_check", "nope")


def test_approvals_retry_refuses_what_is_not_a_failed_execution(knox, request_tenant):
    action = request_tenant()

    with pytest.raises(
        CommandError, match=f"Pending action {action.pk} is pending; it cannot become retried"
    ):
        _call("approvals_retry", str(action.pk))
    with pytest.raises(CommandError, match="No pending action with id 999999"):
        _call("approvals_retry", "999999")


def test_approvals_resubmit_sends_a_failed_submit_again_with_the_same_id(knox, request_tenant):
    from approvals.services import ApprovalSubmitFailed

    knox.faults(submit="error")
    with pytest.raises(ApprovalSubmitFailed):
        request_tenant("Again")
    action = PendingAction.objects.get()
    knox.faults()

    output = _call("approvals_resubmit", str(action.pk))

    action.refresh_from_db()
    assert f"pending action {action.pk}: pending" in output
    assert action.status == ActionStatus.PENDING
    assert knox.document(action.ap_inf_id)["subject"] == "Create tenant Again"
    with pytest.raises(CommandError, match="cannot become resubmitted"):
        _call("approvals_resubmit", str(action.pk))


def test_approvals_retry_executes_a_failed_execution(knox, request_tenant, demo_workspace):
    from approvals.registry import any_requester, register_action_handler, unregister_action_handler
    from operations import approval_handlers

    def failing(payload, *, pending_action):
        raise RuntimeError("downstream is down")

    action = request_tenant("Retried")
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    unregister_action_handler("operations.create_tenant")
    register_action_handler("operations.create_tenant", failing, authorize=any_requester)
    try:
        _call("approvals_poll")
    finally:
        unregister_action_handler("operations.create_tenant")
        approval_handlers.register()
    action.refresh_from_db()
    assert action.status == ActionStatus.FAILED

    output = _call("approvals_retry", str(action.pk))

    assert f"pending action {action.pk}: executed" in output
    assert Tenant.objects.filter(name="Retried").exists()


def test_every_approvals_command_turns_domain_errors_into_one_line():
    from django.core.management import get_commands, load_command_class

    from config.commands import BureauCommand

    # given: the commands the approvals app ships
    names = sorted(name for name, app in get_commands().items() if app == "approvals")

    # then: each is a BureauCommand (a domain error is one line and a non-zero exit)
    assert names == [
        "approvals_check",
        "approvals_deadlines",
        "approvals_poll",
        "approvals_resubmit",
        "approvals_retry",
        "knox_simulator",
    ]
    assert [
        n for n in names if not isinstance(load_command_class("approvals", n), BureauCommand)
    ] == []


def test_an_approval_logs_page_says_what_its_last_check_means(knox, admin_client, request_tenant):
    action = request_tenant("Stamped")

    response = admin_client.get(
        reverse("admin:approvals_approvallog_change", args=[action.approval_log_id])
    )

    assert response.status_code == 200
    assert "KNOX_CHECK_STAMP_SECONDS" in response.content.decode()
