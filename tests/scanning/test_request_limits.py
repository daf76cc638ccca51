"""The API's request-size limit (DATA_UPLOAD_MAX_MEMORY_SIZE, a JSON 413) does
not apply to the scan agent's multipart batch uploads, which keep their own
limit (SCANNING_MAX_BATCH_BYTES)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from scanning.choices import ScanJobStatus
from tests.scanning.factories import ScanJobFactory
from tests.scanning.pdfs import scanned_pdf

pytestmark = pytest.mark.django_db

AGENT = "/api/v1/scanning/agent/"


def test_a_batch_larger_than_the_request_limit_is_still_uploaded(agent_client, settings):
    # given: a request limit far below one scanned batch, and a claimed job
    batch = scanned_pdf(pages=3)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(batch) // 4
    job = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:00:00Z")
    assert agent_client.post(f"{AGENT}claim/").status_code == 200
    assert agent_client.post(f"{AGENT}jobs/{job.pk}/batches/start/").status_code == 200

    # when: the agent uploads it
    response = agent_client.post(
        f"{AGENT}jobs/{job.pk}/batches/",
        {"batch_seq": 1, "file": SimpleUploadedFile("b.pdf", batch, "application/pdf")},
        format="multipart",
    )

    # then: accepted; a JSON body of that size would not be
    assert response.status_code == 201, response.content
    too_big = agent_client.post(f"{AGENT}heartbeat/", {"version": "x" * len(batch)}, format="json")
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "request_too_large"
