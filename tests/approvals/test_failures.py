"""Issue 8, item 14: how failures read. A resubmitted action no longer shows
its old failure; a handler's validation error reads "field: message"; the
admin reports an action that ended failed as an error. Knox is the real
simulator process."""

from io import StringIO

import pytest
from django.contrib.messages import constants, get_messages
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management import call_command
from django.urls import reverse
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.test import APIClient

from approvals.choices import ActionStatus, FailureStage, KnoxStatus
from approvals.models import PendingAction
from approvals.services import ApprovalSubmitFailed, pending_actions_poll
from config.errors import InvalidInput, error_lines
from operations.models import Tenant
from tests.approvals.factories import staff_with

pytestmark = pytest.mark.django_db

TAKEN = "name: This workspace already has a tenant with that name."


def test_a_successful_resubmit_clears_the_old_failure(knox, request_tenant):
    # given: a submit that failed
    knox.faults(submit="error")
    with pytest.raises(ApprovalSubmitFailed):
        request_tenant("Again")
    knox.faults()
    action = PendingAction.objects.get()
    assert (action.failure_stage, action.failure_code) == (FailureStage.SUBMIT, "knox.unavailable")

    # when
    call_command("approvals_resubmit", str(action.pk), stdout=StringIO())

    # then: pending, with nothing left of the failure
    action.refresh_from_db()
    assert action.status == ActionStatus.PENDING
    assert (action.failure_stage, action.failure_code, action.error_message) == ("", "", "")


@pytest.fixture
def taken_before_approval(knox, request_tenant, demo_workspace):
    """Approval asked for tenant "Initech"; someone creates it before Knox approves."""
    action = request_tenant("Initech")
    Tenant.objects.create(workspace=demo_workspace, name="Initech")
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    return action


def test_a_handlers_validation_error_is_stored_as_field_and_message(taken_before_approval):
    action = taken_before_approval

    pending_actions_poll()

    action.refresh_from_db()
    assert action.status == ActionStatus.FAILED
    assert action.error_message == TAKEN
    assert action.failure_code == "approvals.invalid"
    assert action.transitions.last().reason == TAKEN


def test_the_api_shows_the_same_message(taken_before_approval, requester):
    client = APIClient()
    client.force_authenticate(requester)

    response = client.post(f"/api/v1/approvals/pending-actions/{taken_before_approval.pk}/refresh/")

    assert response.status_code == 200
    assert response.data["status"] == "failed"
    assert response.data["error_message"] == TAKEN
    assert response.data["failure_stage"] == "execute"


def test_the_admin_reports_a_check_that_ended_failed_as_an_error(client, taken_before_approval):
    operator = staff_with("approvals.view_pendingaction", "approvals.operate_pendingaction")
    client.force_login(operator)
    action = taken_before_approval

    response = client.post(
        reverse("admin:approvals_pendingaction_changelist"),
        {"action": "check_status_now", "_selected_action": [action.pk]},
        follow=True,
    )

    shown = [(m.level, str(m)) for m in get_messages(response.wsgi_request)]
    assert shown == [(constants.ERROR, f"{action.pk}: failed (approvals.invalid) {TAKEN}")]


@pytest.mark.parametrize(
    "error, lines",
    [
        (
            DrfValidationError({"name": ["Taken."], "lines": {"0": {"qty": ["Too many."]}}}),
            ["name: Taken.", "lines.0.qty: Too many."],
        ),
        (DrfValidationError({"non_field_errors": ["Overlaps."]}), ["Overlaps."]),
        (DrfValidationError(["Nope."]), ["Nope."]),
        (
            DjangoValidationError({"name": ["Taken."], "__all__": ["Both."]}),
            ["name: Taken.", "Both."],
        ),
        (DjangoValidationError("Plain."), ["Plain."]),
        (InvalidInput("Refused."), ["Refused."]),
        (RuntimeError("boom"), ["RuntimeError: boom"]),
    ],
)
def test_error_lines_read_field_and_message(error, lines):
    assert error_lines(error) == lines
