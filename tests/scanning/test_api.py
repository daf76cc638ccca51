"""The web API (people) and the agent API (agent tokens) over HTTP."""

import pytest
from django.core.files.storage import default_storage
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from scanning import services
from scanning.choices import ErrorCode, ScanJobStatus
from scanning.models import Document, ScanJob, ScanJobBatch
from scanning.services import scan_agent_create
from scanning.tasks import assemble_scan_job_task
from tests.operations.factories import UserFactory
from tests.scanning.factories import ScanJobFactory
from tests.scanning.pdfs import page_labels, plain_sentence, scanned_pdf, truncated_pdf

pytestmark = pytest.mark.django_db

JOBS = "/api/v1/scanning/jobs/"
AGENT = "/api/v1/scanning/agent/"


def _upload(agent_client, job_id, seq, data):
    return agent_client.post(
        f"{AGENT}jobs/{job_id}/batches/",
        {"batch_seq": seq, "file": _file(data, f"batch-{seq}.pdf")},
        format="multipart",
    )


def _file(data: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/pdf")


def _scan(agent_client, job_id, seq, pages=2):
    assert agent_client.post(f"{AGENT}jobs/{job_id}/batches/start/").status_code == 200
    response = _upload(
        agent_client, job_id, seq, scanned_pdf(job_id=job_id, batch_seq=seq, pages=pages)
    )
    assert response.status_code == 201, response.data
    return response.data


def test_the_whole_happy_path_through_the_rest_api(operator_client, agent_client):
    # an operator creates a draft, edits it and queues it
    created = operator_client.post(
        JOBS,
        {"title": "Contracts 2026", "settings": {"mode": "gray", "resolution": 200}},
        format="json",
    )
    assert created.status_code == 201, created.data
    job_id = created.data["id"]
    assert created.data["status"] == "draft"
    assert created.data["settings"] == {"mode": "gray", "resolution": 200, "source": "adf"}
    edited = operator_client.patch(
        f"{JOBS}{job_id}/", {"settings": {"source": "adf_duplex"}}, format="json"
    )
    assert edited.data["settings"]["source"] == "adf_duplex"
    assert operator_client.post(f"{JOBS}{job_id}/queue/").data["status"] == "queued"

    # the agent heartbeats, claims it and scans two batches
    beat = agent_client.post(
        f"{AGENT}heartbeat/", {"version": "1.0", "current_job": None}, format="json"
    )
    assert beat.status_code == 200 and beat.data["active_job"] is None
    claimed = agent_client.post(f"{AGENT}claim/")
    assert claimed.status_code == 200
    assert (claimed.data["id"], claimed.data["status"], claimed.data["next_batch_seq"]) == (
        job_id,
        "ready",
        1,
    )
    _scan(agent_client, job_id, 1, pages=3)
    second = _scan(agent_client, job_id, 2, pages=2)
    assert second["page_count"] == 2
    finished = agent_client.post(f"{AGENT}jobs/{job_id}/finish/")
    assert finished.status_code == 200 and finished.data["status"] == "assembling"

    # the assembly task runs (here called directly; test_end_to_end runs a real qcluster)
    assert assemble_scan_job_task(job_id) == "preview"
    job = operator_client.get(f"{JOBS}{job_id}/").data
    assert (job["status"], job["page_count"], job["batch_count"]) == ("preview", 5, 2)
    assert job["preview_url"] == f"{JOBS}{job_id}/preview/"

    # the operator previews the merged PDF
    preview = operator_client.get(job["preview_url"])
    assert preview.status_code == 200
    assert preview["Content-Type"] == "application/pdf"
    pdf = b"".join(preview.streaming_content)
    assert [seq for seq, _ in page_labels(pdf)] == [1, 1, 1, 2, 2]

    # and commits it under a new title
    committed = operator_client.post(
        f"{JOBS}{job_id}/commit/", {"title": "Contracts (signed)"}, format="json"
    )
    assert committed.status_code == 200, committed.data
    assert committed.data["status"] == "committed"
    document = Document.objects.get()
    assert committed.data["document"] == document.pk
    assert (document.title, document.page_count, document.in_inbox) == (
        "Contracts (signed)",
        5,
        True,
    )
    with document.file.open("rb") as stored:
        assert stored.read() == pdf
    inbox = operator_client.get("/api/v1/scanning/documents/", {"in_inbox": "true"})
    assert [d["id"] for d in inbox.data["results"]] == [document.pk]


def test_an_illegal_transition_is_a_409_with_the_current_state(operator_client):
    job = ScanJobFactory(status=ScanJobStatus.QUEUED)

    response = operator_client.post(f"{JOBS}{job.pk}/commit/")

    assert response.status_code == 409
    assert response.data["code"] == "scan_job.invalid_transition"
    assert response.data["current_state"] == "queued"
    assert response.data["requested_state"] == "committing"


def test_a_second_active_job_is_refused_by_the_database_and_reported_as_409(operator_client):
    # given: a job whose assembly failed, and another job that took the scanner since
    failed = ScanJobFactory(status=ScanJobStatus.FAILED, error_code=ErrorCode.ASSEMBLY_FAILED)
    holder = ScanJobFactory(status=ScanJobStatus.SCANNING)

    # when: retrying the assembly would make it active again (no check in Python: the index says no)
    response = operator_client.post(f"{JOBS}{failed.pk}/retry-assembly/")

    # then
    assert response.status_code == 409
    assert response.data["code"] == "scan_job.scanner_busy"
    assert response.data["current_state"] == "failed"
    assert response.data["active_job"] == holder.pk
    failed.refresh_from_db()
    assert failed.status == ScanJobStatus.FAILED


def test_claim_is_204_when_nothing_is_queued_or_the_scanner_is_taken(agent_client):
    assert agent_client.post(f"{AGENT}claim/").status_code == 204
    ScanJobFactory(status=ScanJobStatus.PREVIEW)
    waiting = ScanJobFactory(status=ScanJobStatus.QUEUED)

    assert agent_client.post(f"{AGENT}claim/").status_code == 204
    waiting.refresh_from_db()
    assert waiting.status == ScanJobStatus.QUEUED


def test_a_non_pdf_upload_is_a_400_and_nothing_is_stored(operator_client, agent_client, settings):
    job = operator_client.post(JOBS, {"title": "x"}, format="json").data
    operator_client.post(f"{JOBS}{job['id']}/queue/")
    agent_client.post(f"{AGENT}claim/")
    agent_client.post(f"{AGENT}jobs/{job['id']}/batches/start/")

    response = _upload(agent_client, job["id"], 1, b"PK\x03\x04 a zip, not a pdf")

    assert response.status_code == 400
    assert "file" in response.data
    assert not ScanJobBatch.objects.exists()
    assert ScanJob.objects.get().status == ScanJobStatus.SCANNING
    assert not default_storage.exists("scanning")


def test_a_truncated_pdf_is_a_400_naming_the_problem_and_nothing_is_stored(
    operator_client, agent_client
):
    # given: a job scanning its first batch
    job = operator_client.post(JOBS, {"title": "x"}, format="json").data
    operator_client.post(f"{JOBS}{job['id']}/queue/")
    agent_client.post(f"{AGENT}claim/")
    agent_client.post(f"{AGENT}jobs/{job['id']}/batches/start/")

    # when: the agent uploads the first two thirds of a valid scan
    response = _upload(agent_client, job["id"], 1, truncated_pdf(job_id=job["id"], pages=3))

    # then
    assert response.status_code == 400
    message = response.data["file"][0]
    assert "damaged or incomplete" in message and "would need repair" in message
    assert plain_sentence(message), message
    assert not ScanJobBatch.objects.exists()
    assert ScanJob.objects.get().status == ScanJobStatus.SCANNING
    assert not default_storage.exists("scanning")


def test_an_upload_without_batch_seq_is_a_400_with_field_errors(agent_client):
    job = ScanJobFactory(status=ScanJobStatus.SCANNING)

    response = agent_client.post(
        f"{AGENT}jobs/{job.pk}/batches/",
        {"file": _file(scanned_pdf(), "b.pdf")},
        format="multipart",
    )

    assert response.status_code == 400
    assert "batch_seq" in response.data


def test_a_retried_upload_returns_the_same_batch_and_a_different_file_is_409(
    operator_client, agent_client
):
    job = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:00:00Z")
    agent_client.post(f"{AGENT}claim/")
    agent_client.post(f"{AGENT}jobs/{job.pk}/batches/start/")
    data = scanned_pdf(job_id=job.pk)

    first = _upload(agent_client, job.pk, 1, data)
    again = _upload(agent_client, job.pk, 1, data)
    other = _upload(agent_client, job.pk, 1, scanned_pdf(job_id=job.pk, pages=4))

    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.data["id"] == first.data["id"]
    assert other.data["code"] == "scan_batch.seq_taken"
    job.refresh_from_db()
    assert job.batch_count == 1


def test_starting_the_same_batch_again_after_a_lost_response_returns_the_same_batch(
    agent_client,
):
    # given: the agent claimed a job and started batch 1, but the answer was lost
    job = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:00:00Z")
    agent_client.post(f"{AGENT}claim/")
    first = agent_client.post(f"{AGENT}jobs/{job.pk}/batches/start/", {"batch_seq": 1})

    # when: it starts batch 1 again (with and without saying which batch)
    again = agent_client.post(f"{AGENT}jobs/{job.pk}/batches/start/", {"batch_seq": 1})
    bare = agent_client.post(f"{AGENT}jobs/{job.pk}/batches/start/")

    # then: the same answer, and the job moved once
    assert (first.status_code, again.status_code, bare.status_code) == (200, 200, 200)
    assert again.data == first.data == bare.data
    assert (again.data["status"], again.data["next_batch_seq"]) == ("scanning", 1)
    assert job.events.filter(to_status=ScanJobStatus.SCANNING).count() == 1
    # and the batch it then uploads is batch 1
    assert _upload(agent_client, job.pk, 1, scanned_pdf(job_id=job.pk)).status_code == 201


def test_starting_another_batch_than_the_next_is_a_409(agent_client):
    job = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:00:00Z")
    agent_client.post(f"{AGENT}claim/")

    early = agent_client.post(f"{AGENT}jobs/{job.pk}/batches/start/", {"batch_seq": 2})
    agent_client.post(f"{AGENT}jobs/{job.pk}/batches/start/", {"batch_seq": 1})
    late = agent_client.post(f"{AGENT}jobs/{job.pk}/batches/start/", {"batch_seq": 3})

    assert (early.status_code, early.data["current_state"]) == (409, "ready")
    assert (late.status_code, late.data["current_state"]) == (409, "scanning")
    assert late.data["code"] == "scan_batch.out_of_order"
    assert late.data["expected_batch_seq"] == 1


def test_discard_through_the_api(operator_client, agent_client):
    job = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:00:00Z")
    agent_client.post(f"{AGENT}claim/")
    batch = _scan(agent_client, job.pk, 1)

    response = operator_client.post(f"/api/v1/scanning/batches/{batch['id']}/discard/")
    again = operator_client.post(f"/api/v1/scanning/batches/{batch['id']}/discard/")

    assert response.status_code == 200 and response.data["status"] == "discarded"
    assert again.status_code == 409 and again.data["current_state"] == "discarded"
    assert agent_client.get(f"{AGENT}jobs/{job.pk}/").data["next_batch_seq"] == 2


def test_agent_fail_through_the_api(agent_client):
    job = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:00:00Z")
    agent_client.post(f"{AGENT}claim/")

    response = agent_client.post(
        f"{AGENT}jobs/{job.pk}/fail/", {"error": "ADF jammed"}, format="json"
    )

    assert response.status_code == 200
    assert response.data["status"] == "failed"
    job.refresh_from_db()
    assert (job.error_code, job.error) == ("agent.error", "ADF jammed")


def test_preview_before_assembly_is_a_409(operator_client):
    job = ScanJobFactory(status=ScanJobStatus.DRAFT)

    response = operator_client.get(f"{JOBS}{job.pk}/preview/")

    assert response.status_code == 409
    assert response.data["current_state"] == "draft"


def test_bad_input_is_a_400_with_field_errors(operator_client):
    response = operator_client.post(
        JOBS,
        {"title": "", "settings": {"resolution": 9000, "mode": "sepia", "gamma": 1}},
        format="json",
    )

    assert response.status_code == 400
    assert "title" in response.data
    assert "settings" in response.data
    assert not ScanJob.objects.exists()


def test_jobs_can_be_listed_and_filtered(operator_client):
    draft = ScanJobFactory(title="Invoices A", status=ScanJobStatus.DRAFT)
    queued = ScanJobFactory(title="Letters", status=ScanJobStatus.QUEUED)
    ScanJobFactory(title="Invoices B", status=ScanJobStatus.CANCELED)

    by_status = operator_client.get(JOBS, {"status": ["draft", "queued"]})
    by_title = operator_client.get(JOBS, {"q": "invoices", "status": "draft"})
    bad = operator_client.get(JOBS, {"status": "nonsense"})

    assert {j["id"] for j in by_status.data["results"]} == {draft.pk, queued.pk}
    assert [j["id"] for j in by_title.data["results"]] == [draft.pk]
    assert bad.status_code == 400


def test_a_time_filter_with_an_offset_postgresql_cannot_take_is_answered_in_utc(operator_client):
    # given: a job; Python reads offsets up to ±23:59, PostgreSQL only to ±15:59
    job = ScanJobFactory(title="Offsets")

    # when: asked with such an offset, and with its UTC equivalent
    odd = operator_client.get(JOBS, {"created_after": "2000-05-27T03:33:50+22:28"})
    utc = operator_client.get(JOBS, {"created_after": "2000-05-26T05:05:50Z"})

    # then: an answer, the same as in UTC, on both databases
    assert odd.status_code == 200, odd.content
    assert [j["id"] for j in odd.data["results"]] == [j["id"] for j in utc.data["results"]]
    assert job.pk in [j["id"] for j in odd.data["results"]]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", ""),
        ("patch", "{job}/"),
        ("post", "{job}/queue/"),
        ("post", "{job}/cancel/"),
        ("post", "{job}/commit/"),
        ("post", "{job}/retry-assembly/"),
        ("post", "{job}/resume/"),
        ("post", "{job}/assemble-kept/"),
        ("post", "/api/v1/scanning/batches/{batch}/discard/"),
    ],
)
def test_changing_scanning_data_needs_the_operate_scanner_permission(
    user_client, agent, method, path
):
    # given: a job scanning with one batch, and a person who may only read
    job = ScanJobFactory(status=ScanJobStatus.QUEUED)
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)
    batch, _ = services.scan_batch_upload(
        job_id=job.pk,
        batch_seq=1,
        upload=_file(scanned_pdf(job_id=job.pk), "b.pdf"),
        agent=agent.agent,
    )
    url = path.format(job=job.pk, batch=batch.pk)
    url = url if url.startswith("/") else JOBS + url

    # when
    response = getattr(user_client, method)(url, {"title": "x"}, format="json")

    # then: the services' refusal, and nothing changed
    assert user_client.get(JOBS).status_code == 200
    assert response.status_code == 403
    assert response.data["code"] == "scanning.permission_denied"
    job.refresh_from_db()
    batch.refresh_from_db()
    assert (job.status, job.batch_count, batch.status) == (ScanJobStatus.READY, 1, "scanned")
    assert ScanJob.objects.count() == 1


# --- who may call what ------------------------------------------------------------------


def test_a_users_token_is_refused_on_the_agent_api(operator):
    token = Token.objects.create(user=operator)
    ScanJobFactory(status=ScanJobStatus.QUEUED)
    client = APIClient()

    for header in (f"Token {token.key}", f"Bearer {token.key}"):
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.post(f"{AGENT}claim/")
        assert response.status_code == 401, header
    assert ScanJob.objects.get().status == ScanJobStatus.QUEUED


def _not_found(job_id: int) -> dict:
    return {"code": "scan_job.not_found", "detail": f"Scan job {job_id} does not exist."}


def test_the_agent_reads_only_the_jobs_it_claimed_and_the_next_claimable_one(agent, agent_client):
    # given: another agent's job (claimed, then failed), a job this agent claimed,
    # a draft, the next queued job and a queued job behind it
    other = scan_agent_create(name="other-host").agent
    theirs = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:00:00Z")
    services.scan_job_claim(agent=other)
    services.scan_job_fail(job_id=theirs.pk, agent=other, error="jammed")
    mine = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:01:00Z")
    assert agent_client.post(f"{AGENT}claim/").data["id"] == mine.pk
    draft = ScanJobFactory(status=ScanJobStatus.DRAFT)
    next_up = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:02:00Z")
    behind = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:03:00Z")
    missing = behind.pk + 100

    # when / then: its own job and the next claimable one are readable
    assert agent_client.get(f"{AGENT}jobs/{mine.pk}/").status_code == 200
    assert agent_client.get(f"{AGENT}jobs/{next_up.pk}/").data["status"] == "queued"
    # anything else is a 404 with the answer a missing job gets
    for job_id in (theirs.pk, draft.pk, behind.pk, missing):
        response = agent_client.get(f"{AGENT}jobs/{job_id}/")
        assert (response.status_code, response.data) == (404, _not_found(job_id)), job_id


def test_the_agent_cannot_act_on_another_agents_job_or_learn_that_it_exists(agent, agent_client):
    # given: a job another agent claimed and is scanning
    other = scan_agent_create(name="other-host").agent
    theirs = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:00:00Z")
    services.scan_job_claim(agent=other)
    services.scan_job_start_batch(job_id=theirs.pk, agent=other)

    # when: this agent tries every call on it
    answers = [
        agent_client.post(f"{AGENT}jobs/{theirs.pk}/batches/start/"),
        _upload(agent_client, theirs.pk, 1, scanned_pdf(job_id=theirs.pk)),
        agent_client.post(f"{AGENT}jobs/{theirs.pk}/finish/"),
        agent_client.post(f"{AGENT}jobs/{theirs.pk}/fail/", {"error": "x"}, format="json"),
    ]

    # then: each is the 404 a missing job gets, and nothing changed or was stored
    for response in answers:
        assert (response.status_code, response.data) == (404, _not_found(theirs.pk))
    theirs.refresh_from_db()
    assert (theirs.status, theirs.agent_id) == (ScanJobStatus.SCANNING, other.pk)
    assert not ScanJobBatch.objects.exists()
    assert not default_storage.exists("scanning")


def test_the_heartbeat_does_not_show_another_agents_active_job(agent_client):
    other = scan_agent_create(name="other-host").agent
    ScanJobFactory(status=ScanJobStatus.QUEUED)
    services.scan_job_claim(agent=other)

    response = agent_client.post(f"{AGENT}heartbeat/", {}, format="json")

    assert response.status_code == 200
    assert response.data["active_job"] is None


def test_a_logged_in_session_is_refused_on_the_agent_api(operator):
    client = APIClient()
    client.force_login(operator)

    assert client.post(f"{AGENT}heartbeat/", {}, format="json").status_code == 401


def test_an_agent_token_is_refused_everywhere_else(agent):
    client = APIClient()
    for header in (f"Bearer {agent.token}", f"Token {agent.token}"):
        client.credentials(HTTP_AUTHORIZATION=header)
        for url in (JOBS, "/api/v1/scanning/documents/", "/api/v1/operations/runs/"):
            assert client.get(url).status_code == 401, (header, url)
        assert client.post(JOBS, {"title": "x"}, format="json").status_code == 401
    assert not ScanJob.objects.exists()


def test_the_agent_api_is_not_in_the_global_authentication_defaults(settings):
    defaults = settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]
    assert not any("ScanAgent" in path for path in defaults)


def test_user_facing_views_refuse_an_agent_principal_even_if_authenticated():
    # given: an agent principal reaching a user-facing view by some other route
    from scanning.api.authentication import ScanAgentPrincipal

    agent = scan_agent_create(name="sneaky").agent
    client = APIClient()
    client.force_authenticate(user=ScanAgentPrincipal(agent))

    assert client.get(JOBS).status_code == 403
    assert client.get("/api/v1/scanning/documents/").status_code == 403


def test_an_inactive_agent_is_refused(agent, agent_client):
    agent.agent.is_active = False
    agent.agent.save()

    assert agent_client.post(f"{AGENT}heartbeat/", {}, format="json").status_code == 401


def test_anonymous_is_refused_on_both_sides(api_client):
    assert api_client.get(JOBS).status_code == 401
    response = api_client.post(f"{AGENT}claim/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_heartbeat_reports_the_active_job_for_a_restarted_agent(agent_client):
    job = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:00:00Z")
    agent_client.post(f"{AGENT}claim/")

    response = agent_client.post(
        f"{AGENT}heartbeat/", {"version": "2", "current_job": job.pk}, format="json"
    )

    assert response.data["active_job"]["id"] == job.pk
    assert response.data["active_job"]["status"] == "ready"


def test_a_users_token_still_works_on_the_web_api():
    user = UserFactory()
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    assert client.get(JOBS).status_code == 200


def test_a_committed_document_can_be_downloaded(operator_client, agent_client):
    job = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:00:00Z")
    agent_client.post(f"{AGENT}claim/")
    _scan(agent_client, job.pk, 1)
    agent_client.post(f"{AGENT}jobs/{job.pk}/finish/")
    assemble_scan_job_task(job.pk)
    operator_client.post(f"{JOBS}{job.pk}/commit/")
    listed = operator_client.get("/api/v1/scanning/documents/").data["results"][0]

    response = operator_client.get(listed["file_url"])

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF-")


def test_a_preview_whose_file_went_missing_is_a_404_not_a_500(operator_client):
    job = ScanJobFactory(
        status=ScanJobStatus.PREVIEW, file="scanning/jobs/1/gone.pdf", file_hash="a" * 64
    )

    response = operator_client.get(f"{JOBS}{job.pk}/preview/")

    assert response.status_code == 404
    assert response.data["code"] == "scanning.file_missing"


def test_an_oversized_upload_is_refused_before_it_is_read(agent_client, settings):
    settings.SCANNING_MAX_BATCH_BYTES = 1024
    job = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at="2026-01-01T00:00:00Z")
    agent_client.post(f"{AGENT}claim/")
    agent_client.post(f"{AGENT}jobs/{job.pk}/batches/start/")
    big = scanned_pdf(pages=1) + b"%" + b"x" * 200_000

    response = _upload(agent_client, job.pk, 1, big)

    assert response.status_code == 400
    assert "batch limit is 1024 bytes" in response.data["file"][0]
    assert not ScanJobBatch.objects.exists()


def test_the_scanning_endpoints_are_in_the_openapi_schema(user_client):
    schema = user_client.get(
        "/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    ).json()

    for path in (
        "/api/v1/scanning/jobs/",
        "/api/v1/scanning/jobs/{id}/commit/",
        "/api/v1/scanning/jobs/{id}/preview/",
        "/api/v1/scanning/batches/{id}/discard/",
        "/api/v1/scanning/agent/claim/",
        "/api/v1/scanning/agent/jobs/{id}/batches/",
    ):
        assert path in schema["paths"], path
    assert "scanAgentToken" in schema["components"]["securitySchemes"]


def _preview_through_the_api(operator_client, agent_client, job_id_in_pages=None) -> int:
    """A job in preview. The simulated scanner prints the job's id on its
    pages: ``job_id_in_pages`` makes them byte-identical to that job's."""
    job_id = operator_client.post(JOBS, {"title": "Letters"}, format="json").data["id"]
    operator_client.post(f"{JOBS}{job_id}/queue/")
    assert agent_client.post(f"{AGENT}claim/").data["id"] == job_id
    assert agent_client.post(f"{AGENT}jobs/{job_id}/batches/start/").status_code == 200
    pages = scanned_pdf(job_id=job_id_in_pages or job_id, batch_seq=1, pages=2)
    assert _upload(agent_client, job_id, 1, pages).status_code == 201
    agent_client.post(f"{AGENT}jobs/{job_id}/finish/")
    assert assemble_scan_job_task(job_id) == "preview"
    return job_id


def test_a_retried_claim_returns_the_job_the_agent_already_holds(agent_client):
    job = ScanJobFactory(status=ScanJobStatus.QUEUED)
    first = agent_client.post(f"{AGENT}claim/")

    again = agent_client.post(f"{AGENT}claim/")

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.data["id"] == again.data["id"] == job.pk
    assert again.data["status"] == "ready"


def test_commit_of_a_preview_whose_file_is_gone_is_a_409_and_frees_the_scanner(
    operator_client, agent_client
):
    job_id = _preview_through_the_api(operator_client, agent_client)
    default_storage.delete(ScanJob.objects.get(pk=job_id).file.name)

    response = operator_client.post(f"{JOBS}{job_id}/commit/", {}, format="json")

    assert response.status_code == 409
    assert response.data["code"] == "scan_job.file_missing"
    assert response.data["current_state"] == "failed"
    assert not Document.objects.exists()
    assert ScanJob.objects.get(pk=job_id).status == ScanJobStatus.FAILED
    # the scanner is not blocked: another job can be queued and claimed
    other = operator_client.post(JOBS, {"title": "Next"}, format="json").data["id"]
    operator_client.post(f"{JOBS}{other}/queue/")
    assert agent_client.post(f"{AGENT}claim/").data["id"] == other


def test_a_commit_that_cannot_copy_is_a_409_and_the_job_can_be_canceled(
    operator_client, agent_client, monkeypatch
):
    import errno

    from django.core.files.storage import FileSystemStorage

    job_id = _preview_through_the_api(operator_client, agent_client)
    original = FileSystemStorage._save

    def disk_full(self, name, content):
        # A full disk has no local stand-in: fail only the inbox copy.
        if name.startswith("documents/"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", disk_full)

    response = operator_client.post(f"{JOBS}{job_id}/commit/", {}, format="json")

    assert response.status_code == 409
    assert response.data["code"] == "scan_job.commit_failed"
    assert response.data["current_state"] == "preview"
    canceled = operator_client.post(f"{JOBS}{job_id}/cancel/", {}, format="json")
    assert canceled.status_code == 200, canceled.data
    assert canceled.data["status"] == "canceled"


def _lost_job(agent) -> ScanJob:
    """A job the scheduled check failed with agent.lost after one kept batch."""
    from datetime import timedelta

    from django.utils import timezone

    from scanning.models import ScanAgentStatus
    from tests.scanning.pdfs import upload

    job = services.scan_job_create(title="Lost")
    services.scan_job_queue(job_id=job.pk)
    services.scan_job_claim(agent=agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent)
    services.scan_batch_upload(
        job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf(job_id=job.pk)), agent=agent
    )
    services.scan_job_start_batch(job_id=job.pk, agent=agent)
    services.scan_agent_heartbeat(agent=agent)
    ScanAgentStatus.objects.update(last_heartbeat=timezone.now() - timedelta(minutes=10))
    services.scan_agent_check()
    job.refresh_from_db()
    assert job.error_code == ErrorCode.AGENT_LOST
    return job


def test_a_lost_job_is_resumed_through_the_api_and_the_agent_scans_on(
    operator_client, agent, agent_client
):
    job = _lost_job(agent.agent)

    response = operator_client.post(f"{JOBS}{job.pk}/resume/")

    assert response.status_code == 200, response.data
    assert (response.data["status"], response.data["error_code"]) == ("queued", "")
    assert [b["batch_seq"] for b in response.data["batches"]] == [1]
    claimed = agent_client.post(f"{AGENT}claim/")
    assert (claimed.data["id"], claimed.data["next_batch_seq"]) == (job.pk, 2)


def test_the_kept_batches_are_assembled_through_the_api_unless_the_scanner_is_taken(
    operator_client, agent, django_capture_on_commit_callbacks
):
    from django_q.models import OrmQ

    job = _lost_job(agent.agent)
    holder = ScanJobFactory(status=ScanJobStatus.READY)

    busy = operator_client.post(f"{JOBS}{job.pk}/assemble-kept/")
    holder.status = ScanJobStatus.CANCELED
    holder.save()
    with django_capture_on_commit_callbacks(execute=True):
        accepted = operator_client.post(f"{JOBS}{job.pk}/assemble-kept/")
    again = operator_client.post(f"{JOBS}{job.pk}/assemble-kept/")

    assert (busy.status_code, busy.data["code"], busy.data["current_state"]) == (
        409,
        "scan_job.scanner_busy",
        "failed",
    )
    assert (accepted.status_code, accepted.data["status"]) == (202, "assembling")
    assert [task.func() for task in OrmQ.objects.all()] == ["scanning.tasks.assemble_scan_job_task"]
    assert (again.status_code, again.data["current_state"]) == (409, "assembling")
    assert assemble_scan_job_task(job.pk) == "preview"


def test_a_commit_whose_file_is_already_a_document_names_that_document(
    operator_client, agent_client
):
    # given: a job committed as "Letters", and a second job whose merged file is byte-identical
    first = _preview_through_the_api(operator_client, agent_client)
    original = operator_client.post(f"{JOBS}{first}/commit/", {}, format="json").data
    assert original["duplicate_of"] is None
    document = Document.objects.get()
    second = _preview_through_the_api(operator_client, agent_client, job_id_in_pages=first)

    # when
    response = operator_client.post(f"{JOBS}{second}/commit/", {"title": "Again"}, format="json")

    # then: the answer names the existing document; no second document exists
    assert response.status_code == 200, response.data
    assert response.data["status"] == "committed"
    assert response.data["document"] == document.pk
    assert response.data["duplicate_of"] == {"id": document.pk, "title": "Letters"}
    assert Document.objects.count() == 1


def test_reading_scanned_content_needs_the_view_document_permission(
    operator_client, agent_client, user_client
):
    # given: a committed document, its job's preview, and a person without view_document
    job_id = _preview_through_the_api(operator_client, agent_client)
    operator_client.post(f"{JOBS}{job_id}/commit/", {}, format="json")
    document = Document.objects.get()
    docs = "/api/v1/scanning/documents/"

    # when / then: the list is empty, the document, its file and the preview are 404s,
    # the same answers as for ones that do not exist
    assert user_client.get(docs).data["results"] == []
    for url, missing in (
        (f"{docs}{document.pk}/", f"{docs}424242/"),
        (f"{docs}{document.pk}/file/", f"{docs}424242/file/"),
    ):
        refused, absent = user_client.get(url), user_client.get(missing)
        assert (refused.status_code, refused.data) == (absent.status_code, absent.data)
        assert refused.status_code == 404
    preview = user_client.get(f"{JOBS}{job_id}/preview/")
    assert (preview.status_code, preview.data) == (404, _not_found(job_id))
    assert user_client.get(f"{JOBS}424242/preview/").data == _not_found(424242)
    # while the operator, who holds it, reads them
    assert operator_client.get(f"{docs}{document.pk}/file/").status_code == 200
    assert operator_client.get(f"{JOBS}{job_id}/preview/").status_code == 200
