import pytest
from rest_framework.test import APIClient

from approvals.choices import ActionStatus, KnoxStatus
from approvals.models import PendingAction
from operations.models import Tenant
from tests.approvals.factories import staff_with, tenant_request_body
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/approvals/"


@pytest.fixture
def client_for():
    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


def test_request_approval_returns_201_with_the_document_id(
    knox, client_for, requester, demo_workspace, tenant_template
):
    response = client_for(requester).post(f"{URL}requests/", tenant_request_body(), format="json")

    assert response.status_code == 201, response.data
    action = PendingAction.objects.get()
    assert response.data == {"id": action.pk, "ap_inf_id": action.ap_inf_id, "status": "pending"}
    assert knox.document(action.ap_inf_id)["subject"] == "Create tenant Initech"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"action_type": "nope.nothing"}, "action_type"),
        ({"variables": {"tenant_name": "x"}}, "variables"),
        ({"variables": {"tenant_name": "x", "workspace": "y", "extra": "z"}}, "variables"),
        ({"payload": {"workspace": "no-such-workspace", "name": "x"}}, "payload.workspace"),
        ({"payload": "not an object"}, "payload"),
        ({"approvers": []}, "approvers"),
        ({"template_name": "Nope"}, "template_name"),
        ({"title": ""}, "title"),
    ],
)
def test_bad_requests_are_400_with_field_errors_and_write_nothing(
    knox, client_for, requester, demo_workspace, tenant_template, overrides, field
):
    response = client_for(requester).post(
        f"{URL}requests/", tenant_request_body(**overrides), format="json"
    )

    assert response.status_code == 400
    assert field in response.data, response.data
    assert not PendingAction.objects.exists()
    assert knox.calls() == {}


def test_a_user_without_an_ep_id_gets_a_400(knox, client_for, demo_workspace, tenant_template):
    response = client_for(UserFactory()).post(
        f"{URL}requests/", tenant_request_body(), format="json"
    )

    assert response.status_code == 400
    assert "EP ID" in response.data["user"][0]


def test_knox_down_is_a_503_naming_the_failed_action(
    knox, client_for, requester, demo_workspace, tenant_template
):
    knox.faults(submit="error")

    response = client_for(requester).post(f"{URL}requests/", tenant_request_body(), format="json")

    assert response.status_code == 503
    assert response.data["code"] == "knox.unavailable"
    assert response.data["status"] == "failed"
    assert PendingAction.objects.get(pk=response.data["id"]).status == ActionStatus.FAILED


def test_pending_actions_are_your_own_unless_staff(knox, client_for, requester, request_tenant):
    mine = request_tenant("Mine")
    other = UserFactory()
    staff = UserFactory(is_staff=True)

    assert [
        a["id"] for a in client_for(requester).get(f"{URL}pending-actions/").data["results"]
    ] == [mine.pk]
    assert client_for(other).get(f"{URL}pending-actions/").data["count"] == 0
    assert client_for(other).get(f"{URL}pending-actions/{mine.pk}/").status_code == 404
    assert client_for(staff).get(f"{URL}pending-actions/{mine.pk}/").data["status"] == "pending"


def test_the_pending_action_list_does_not_read_what_it_does_not_show(
    knox, client_for, requester, request_tenant
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # given: a submitted action, whose log holds the rendered contents
    action = request_tenant("Wide")
    assert action.approval_log.contents

    # when
    with CaptureQueriesContext(connection) as queries:
        response = client_for(requester).get(f"{URL}pending-actions/")

    # then: the page is served, and neither the contents, the approval line nor
    # Knox's raw answer was read (kilobytes a row in production)
    assert [row["id"] for row in response.data["results"]] == [action.pk]
    assert response.data["results"][0]["subject"] == action.approval_log.subject
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    for column in ("contents", "approvers", "last_knox_response"):
        assert f'"approvals_approvallog"."{column}"' not in sql, column


def test_filters_and_bad_filter_values(knox, client_for, requester, request_tenant):
    request_tenant("One")
    client = client_for(requester)

    assert client.get(f"{URL}pending-actions/?status=pending").data["count"] == 1
    assert client.get(f"{URL}pending-actions/?status=executed").data["count"] == 0
    assert (
        client.get(f"{URL}pending-actions/?action_type=operations.create_tenant").data["count"] == 1
    )
    assert client.get(f"{URL}pending-actions/?status=bogus").status_code == 400


def test_refresh_asks_knox_and_executes_an_approved_action(
    knox, client_for, requester, request_tenant
):
    action = request_tenant("Refreshed")
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)

    response = client_for(requester).post(f"{URL}pending-actions/{action.pk}/refresh/")

    assert response.status_code == 200
    assert response.data["status"] == "executed"
    assert [t["to_status"] for t in response.data["transitions"]] == [
        "pending",
        "approved",
        "executing",
        "executed",
    ]
    assert Tenant.objects.filter(name="Refreshed").exists()


def test_retry_needs_the_operate_permission_and_is_a_409_when_not_retryable(
    knox, client_for, requester, request_tenant
):
    action = request_tenant("Retry")

    assert client_for(requester).post(f"{URL}pending-actions/{action.pk}/retry/").status_code == 403
    response = client_for(staff_with("approvals.operate_pendingaction")).post(
        f"{URL}pending-actions/{action.pk}/retry/"
    )

    assert response.status_code == 409
    assert response.data["current_state"] == "pending"


def test_templates_lists_active_templates_with_their_variables(
    client_for, requester, tenant_template
):
    response = client_for(requester).get(f"{URL}templates/")

    assert response.status_code == 200
    assert response.data["results"][0]["variables"] == ["tenant_name", "workspace"]


def test_anonymous_is_401(api_client):
    assert api_client.post(f"{URL}requests/", {}, format="json").status_code == 401
