"""Configured secrets that Knox echoes back never reach an API answer, a
transition reason, a run's failure summary or a log line (issue 8, item 6).

Real parts: the Knox simulator process answers with a body that contains the
configured KNOX_TOKEN (its ``message`` fault), Bureau's real client and API
handle it, and the log is what the configured console handler writes."""

import io
import json
import logging

import pytest
from rest_framework.test import APIClient

from approvals.knox.client import get_knox_client
from approvals.knox.errors import KnoxRejected
from approvals.models import PendingAction, PendingActionTransition
from approvals.tasks import poll_knox
from operations.models import OperationRun
from operations.sanitize import RedactSecretsFilter
from tests.approvals.factories import tenant_request_body

pytestmark = pytest.mark.django_db

# A token no pattern would recognise as one: only its configured value gives it away.
TOKEN = "Zebra7Quill3Harbor9"
ECHO = f"system BUREAU presented {TOKEN} which is not allowed for this form"


@pytest.fixture
def console_log():
    """What the configured console handler (LOGGING, with its filters) writes."""
    handler = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactSecretsFilter) for f in h.filters)
    )
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield stream
    handler.setStream(old)


@pytest.fixture
def knox_with_token(knox, settings):
    # The simulator process accepts any bearer token (it was started without one);
    # Bureau sends this one, and the fault echoes it back.
    settings.KNOX_TOKEN = TOKEN
    return knox


def test_a_token_echoed_by_knox_on_submit_reaches_no_answer_reason_or_log(
    knox_with_token, requester, demo_workspace, tenant_template, console_log
):
    # given: Knox refuses the submit with a message that repeats our token
    knox_with_token.faults(submit="reject", message=ECHO)
    client = APIClient()
    client.force_authenticate(requester)

    # when: the approval is requested through the API
    response = client.post(
        "/api/v1/approvals/requests/",
        tenant_request_body(workspace=demo_workspace.slug),
        format="json",
    )

    # then: a 502 naming the refusal, with the token replaced
    assert response.status_code == 502, response.content
    assert TOKEN not in response.content.decode()
    assert "[REDACTED]" in response.json()["detail"]
    action = PendingAction.objects.get()
    reasons = list(PendingActionTransition.objects.values_list("reason", flat=True))
    assert any("[REDACTED]" in reason for reason in reasons), reasons
    assert all(TOKEN not in reason for reason in reasons)
    assert TOKEN not in action.error_message
    # and: the same refusal logged with its traceback (as a handler that logs the
    # error would) leaves the configured handler redacted
    try:
        get_knox_client().withdraw(ap_inf_id=action.ap_inf_id)
    except KnoxRejected:
        logging.getLogger("approvals").exception("Knox refused: %s", ECHO)
    written = console_log.getvalue()
    assert "Knox refused" in written and "[REDACTED]" in written
    assert TOKEN not in written


def test_a_token_echoed_by_knox_on_the_poll_stays_out_of_the_run_failure_summary(
    knox_with_token, request_tenant, console_log
):
    # given: one document in flight, then Knox refuses status calls, repeating our token
    request_tenant()
    knox_with_token.faults(statuses="reject", message=ECHO)

    # when: the scheduled poll runs
    poll_knox()

    # then: the run records the refusal, redacted
    run = OperationRun.objects.get(type="approvals.poll_knox")
    summary = json.dumps(run.failure_summary)
    assert run.failure_summary and "[REDACTED]" in summary
    assert TOKEN not in summary
    assert TOKEN not in console_log.getvalue()
