"""Issue 13 end to end: a request through the API with a one-second deadline,
the real Knox simulator process, and ``manage.py approvals_deadlines`` as a
process of its own after the deadline passed: the action expires and the
document is withdrawn at Knox."""

import time

import pytest
from rest_framework.test import APIClient

from approvals.choices import ActionStatus, KnoxStatus
from approvals.models import PendingAction
from operations.models import OperationRun
from tests.live_server import start_manage, stop_process

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_deadline_passes_and_the_document_is_withdrawn_at_knox(
    knox, requester, demo_workspace, tenant_template
):
    # given: a request whose deadline is one second
    client = APIClient()
    client.force_authenticate(requester)
    response = client.post(
        "/api/v1/approvals/requests/",
        {
            "action_type": "operations.create_tenant",
            "payload": {"workspace": "acme", "name": "Initech"},
            "title": "Create tenant Initech",
            "template_name": tenant_template.name,
            "variables": {"tenant_name": "Initech", "workspace": "acme"},
            "approvers": ["EP-BOSS-1"],
            "deadline": "1s",
        },
        format="json",
    )
    assert response.status_code == 201, response.data
    action = PendingAction.objects.get()
    assert knox.document(action.ap_inf_id)["status"] == KnoxStatus.IN_PROGRESS

    # when: the deadline passes and the sweep runs in its own process
    time.sleep(1.2)
    process = start_manage("approvals_deadlines", KNOX_BASE_URL=knox.url)
    process.wait(timeout=60)
    output = stop_process(process)

    # then
    assert process.returncode == 0, output
    assert "expired 1" in output and "withdrawn 1" in output
    action.refresh_from_db()
    assert action.status == ActionStatus.EXPIRED
    assert knox.document(action.ap_inf_id)["status"] == KnoxStatus.WITHDRAWN
    assert "deadline passed" in knox.document(action.ap_inf_id)["opinion"]
    run = OperationRun.objects.get(type="approvals.sweep_deadlines")
    assert (run.outcome, run.summary_counts["expired"]) == ("succeeded", 1)
