"""With a real ``qcluster``: a request id follows the task it queued into
the worker, the run it starts and the worker's JSON log lines; and /readyz
sees the cluster once it has finished a task."""

from __future__ import annotations

import json

import pytest

from operations.choices import RunOutcome, RunStatus
from operations.models import OperationRun
from tests.live_server import start_manage, stop_process, wait_until
from tests.observability.scanning_setup import job_ready_to_finish

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_request_id_follows_its_task_into_the_worker_and_readyz_sees_the_cluster(client):
    # given: a scan job whose only batch file went missing (its assembly will
    # fail and log why), not ready yet (no cluster), and a cluster logging JSON
    ready = job_ready_to_finish("Lost batch")
    batch = ready.job.batches.get()
    batch.file.storage.delete(batch.file.name)
    assert client.get("/readyz").status_code == 503
    cluster = start_manage("qcluster", Q_WORKERS="1", LOG_FORMAT="json")
    try:
        # when: the agent finishes the job in a request with an id; the cluster assembles
        response = client.post(
            f"/api/v1/scanning/agent/jobs/{ready.job.pk}/finish/",
            HTTP_AUTHORIZATION=f"Bearer {ready.token}",
            HTTP_X_REQUEST_ID="req-e2e-1",
        )
        assert response.status_code == 200, response.content
        assembled = wait_until(
            lambda: OperationRun.objects.filter(
                type="scanning.assemble_job", status=RunStatus.COMPLETED
            ).exists(),
            timeout=90,
            process=cluster,
        )
        became_ready = wait_until(lambda: client.get("/readyz").status_code == 200, timeout=30)
    finally:
        output = stop_process(cluster)
    print(output)  # shown by pytest when the test failed

    # then: the run the task started records the request's id
    assert assembled, "the cluster did not assemble within 90 s"
    run = OperationRun.objects.get(type="scanning.assemble_job")
    assert run.outcome == RunOutcome.PARTIALLY_SUCCEEDED  # the job failed, the run did its job
    assert run.context["request_id"] == "req-e2e-1"
    # and the worker's log line says which request, run and job it is about
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    failure = [
        line
        for line in lines
        if line["message"].startswith(f"assembly of scan job {ready.job.pk} failed")
    ]
    assert len(failure) == 1, lines
    assert failure[0]["level"] == "WARNING"
    assert failure[0]["request_id"] == "req-e2e-1"
    assert failure[0]["run_id"] == run.pk
    assert failure[0]["scan_job_id"] == ready.job.pk
    # and the worker's lines after the task belong to no request
    stopped = [line for line in lines if "stopped doing work" in line["message"]]
    assert stopped and all("request_id" not in line for line in stopped)
    # and readiness saw a cluster at work
    assert became_ready
    assert client.get("/readyz").json()["checks"]["cluster"] == "active"
