"""Issue 8, items 1 and 2: an approval request is authorized for its payload
when it is made and again right before it runs, and a refusal never tells a
non-member whether a workspace or a tenant name exists. Knox is the real
simulator process."""

import pytest
from rest_framework.test import APIClient

from approvals.choices import ActionStatus, FailureStage, KnoxStatus
from approvals.models import ApprovalLog, PendingAction
from approvals.registry import register_action_handler, unregister_action_handler
from approvals.services import approval_request, pending_actions_poll
from config.errors import Forbidden
from operations.choices import MemberRole
from operations.models import Tenant, WorkspaceMembership
from tests.approvals.factories import requester_in, tenant_request_body
from tests.operations.factories import TenantFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/approvals/requests/"


def _post(user, *, workspace: str, name: str = "Initech"):
    client = APIClient()
    client.force_authenticate(user)
    return client.post(
        URL,
        tenant_request_body(name=name, workspace=workspace),
        format="json",
    )


def _nothing_written_or_sent(knox) -> bool:
    return (
        not PendingAction.objects.exists()
        and not ApprovalLog.objects.exists()
        and knox.calls() == {}
    )


@pytest.mark.parametrize("role", [None, MemberRole.VIEWER], ids=["non-member", "viewer"])
def test_who_may_not_create_tenants_in_a_workspace_cannot_request_it(
    knox, demo_workspace, tenant_template, role
):
    # given: a user with an EP ID who is not an operator or admin of acme
    user = requester_in(demo_workspace, role=role, ep_id="EP-OUT-1")

    # when
    response = _post(user, workspace="acme")

    # then: refused; nothing written, nothing sent to Knox
    assert response.status_code == 400
    assert response.data["payload.workspace"] == [
        "No workspace you may create tenants in has this slug."
    ]
    assert _nothing_written_or_sent(knox)
    assert not Tenant.objects.exists()


@pytest.mark.parametrize("role", [MemberRole.OPERATOR, MemberRole.ADMIN])
def test_operators_and_admins_of_the_workspace_may_request_it(
    knox, demo_workspace, tenant_template, role
):
    user = requester_in(demo_workspace, role=role, ep_id="EP-IN-1")

    response = _post(user, workspace="acme")

    assert response.status_code == 201, response.data
    assert knox.document(response.data["ap_inf_id"]) is not None


def test_a_superuser_may_request_it_in_any_workspace(knox, demo_workspace, tenant_template):
    # Superusers see every workspace (operations.selectors), so they may create
    # tenants in any, as they may in the admin.
    user = requester_in(demo_workspace, role=None, ep_id="EP-SU-1", is_superuser=True)

    response = _post(user, workspace="acme")

    assert response.status_code == 201, response.data


@pytest.mark.parametrize("role", [None, MemberRole.VIEWER], ids=["non-member", "viewer"])
def test_refusals_do_not_reveal_workspaces_or_tenant_names(
    knox, demo_workspace, tenant_template, role
):
    # given: acme exists and has a tenant "Taken"; "ghost" does not exist
    TenantFactory(workspace=demo_workspace, name="Taken")
    user = requester_in(demo_workspace, role=role, ep_id="EP-OUT-1")

    # when: every combination of existing/missing slug and taken/free name
    answers = {
        (slug, name): _post(user, workspace=slug, name=name)
        for slug in ("acme", "ghost")
        for name in ("Taken", "Free")
    }

    # then: the same status and the same text for all four (the answer names
    # neither the slug nor the tenant)
    shapes = {(r.status_code, r.content) for r in answers.values()}
    assert shapes == {
        (
            400,
            b'{"code":"invalid","detail":"payload.workspace: No workspace you may create tenants'
            b' in has this slug.","payload.workspace":["No workspace you may create tenants in'
            b' has this slug."]}',
        )
    }
    assert _nothing_written_or_sent(knox)


def test_an_operator_is_still_told_that_a_name_is_taken(
    knox, requester, demo_workspace, tenant_template
):
    TenantFactory(workspace=demo_workspace, name="Taken")

    response = _post(requester, workspace="acme", name="Taken")

    assert response.status_code == 400
    assert response.data["payload.name"] == ["This workspace already has a tenant with that name."]


@pytest.mark.parametrize("change", ["removed", "demoted", "deactivated", "deleted"])
def test_losing_the_right_before_knox_approves_fails_the_execution(
    knox, requester, request_tenant, change
):
    # given: a request made while the requester was an operator of acme
    action = request_tenant("Initech")
    membership = WorkspaceMembership.objects.get(user=requester)

    # when: the right goes away while Knox decides, then Knox approves
    if change == "removed":
        membership.delete()
    elif change == "demoted":
        membership.role = MemberRole.VIEWER
        membership.save()
    elif change == "deactivated":
        requester.is_active = False
        requester.save()
    else:
        requester.delete()
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    counts = pending_actions_poll()

    # then: nothing runs; the action fails at execution with a stable code
    action.refresh_from_db()
    assert action.status == ActionStatus.FAILED
    assert action.failure_stage == FailureStage.EXECUTE
    assert action.failure_code == "approvals.not_authorized"
    assert "may not create tenants" in action.error_message
    assert counts["failed"] == 1 and counts["executed"] == 0
    assert not Tenant.objects.filter(name="Initech").exists()


def test_a_refused_execution_records_its_code_in_the_poll_run(knox, requester, request_tenant):
    from approvals.tasks import poll_knox
    from operations.models import OperationRun

    action = request_tenant("Initech")
    WorkspaceMembership.objects.filter(user=requester).delete()
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)

    poll_knox()

    run = OperationRun.objects.get(type="approvals.poll_knox")
    assert run.failure_summary[0]["code"] == "approvals.not_authorized"


@pytest.fixture
def guarded_handler(db):
    """A handler whose payload has no serializer: only its authorize hook guards it."""
    ran = []

    def authorize(user, payload):
        if payload.get("vault") != f"{user.get_username()}-vault":
            raise Forbidden("Only the owner may open a vault.")

    register_action_handler("test.open_vault", lambda p, **_: ran.append(p), authorize=authorize)
    yield ran
    unregister_action_handler("test.open_vault")


def test_the_authorize_hook_refuses_at_request_time_with_a_stable_code(
    knox, requester, tenant_template, guarded_handler
):
    client = APIClient()
    client.force_authenticate(requester)

    response = client.post(
        URL,
        {
            "action_type": "test.open_vault",
            "payload": {"vault": "someone-else-vault"},
            "title": "Open",
            "template_name": tenant_template.name,
            "variables": {"tenant_name": "x", "workspace": "y"},
            "approvers": ["EP-BOSS-1"],
        },
        format="json",
    )

    assert response.status_code == 403
    assert response.data == {
        "code": "approvals.not_authorized",
        "detail": "Only the owner may open a vault.",
    }
    assert _nothing_written_or_sent(knox)


def test_a_handler_must_declare_who_may_request_it():
    with pytest.raises(TypeError):
        register_action_handler("test.undeclared", lambda p, **_: None)  # no authorize


def test_an_operator_of_another_workspace_cannot_borrow_it(knox, requester, tenant_template):
    # requester is an operator of acme only
    WorkspaceFactory(slug="globex")

    with pytest.raises(Exception) as error:
        approval_request(
            action_type="operations.create_tenant",
            payload={"workspace": "globex", "name": "Sneaky"},
            title="Sneaky",
            template_name=tenant_template.name,
            variables={"tenant_name": "Sneaky", "workspace": "globex"},
            approvers=["EP-BOSS-1"],
            user=requester,
        )

    assert "payload.workspace" in error.value.message_dict
    assert _nothing_written_or_sent(knox)
