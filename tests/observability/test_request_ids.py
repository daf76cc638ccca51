"""Request ids: assigned or honoured, echoed, and carried into the runs a
request starts and the tasks it queues."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from operations.models import OperationRun
from tests.observability.scanning_setup import job_ready_to_finish

pytestmark = pytest.mark.django_db


def test_every_response_carries_a_fresh_request_id_when_none_was_sent(client):
    # when
    first = client.get("/healthz")
    second = client.get("/healthz")

    # then
    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.parametrize(
    "incoming",
    ["4bf92f3577b34da6a3ce929d0e0e4736", "Root=1-67891233-abcdef012345678912345678", "req-42"],
)
def test_a_sane_incoming_request_id_is_kept_and_echoed(client, incoming):
    # when
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)

    # then
    assert response["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["two words", "x" * 129, "<script>", "id\nForged: header", "-leading-dash", "café"],
)
def test_an_insane_incoming_request_id_is_replaced(client, incoming):
    # when
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)

    # then
    assert response["X-Request-ID"] != incoming
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_a_run_started_by_a_request_records_its_request_id(admin_client):
    # when: an operator presses "Reconcile now"
    response = admin_client.post(
        reverse("admin:operations_operationrun_reconcile"), HTTP_X_REQUEST_ID="req-reconcile-1"
    )

    # then
    assert response.status_code == 302
    run = OperationRun.objects.get(type="ops.reconcile_runs")
    assert run.context["request_id"] == "req-reconcile-1"


def test_a_run_started_outside_a_request_has_no_request_id(db):
    # when: the schedule's entry point runs (no request)
    from operations.tasks import reconcile_runs_task

    reconcile_runs_task()

    # then
    assert "request_id" not in OperationRun.objects.get(type="ops.reconcile_runs").context


@pytest.mark.django_db(transaction=True)  # real commits: the task is queued inside the request
def test_a_task_queued_by_a_request_carries_its_request_id(client):
    # given: a scan job with a batch, its agent about to finish it
    ready = job_ready_to_finish()

    # when: the agent says "finish" (the assembly task is queued on commit)
    response = client.post(
        f"/api/v1/scanning/agent/jobs/{ready.job.pk}/finish/",
        HTTP_AUTHORIZATION=f"Bearer {ready.token}",
        HTTP_X_REQUEST_ID="req-finish-7",
    )

    # then: the package in the ORM broker carries the id beside the function
    assert response.status_code == 200, response.content
    (queued,) = OrmQ.objects.all()
    package = SignedPackage.loads(queued.payload)
    assert package["func"] == "scanning.tasks.assemble_scan_job_task"
    assert package["bureau_request_id"] == "req-finish-7"
    assert package["args"] == (ready.job.pk,)
