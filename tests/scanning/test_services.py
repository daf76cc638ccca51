"""The scan job state machine through its services."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.test import override_settings
from django.utils import timezone

from config.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from scanning import selectors, services
from scanning.choices import (
    ACTIVE_STATUSES,
    SCAN_JOB_STATES,
    BatchStatus,
    ErrorCode,
    ScanJobStatus,
)
from scanning.errors import OperatorPermissionRequired, ScannerBusy
from scanning.models import Document, ScanAgentStatus, ScanJob, ScanJobBatch, ScanJobEvent
from scanning.services import scan_agent_create
from tests.scanning.factories import ScanJobFactory
from tests.scanning.pdfs import (
    blank_pages_pdf,
    corrupted_stream_pdf,
    page_labels,
    pdf_with_a_blank_page,
    plain_sentence,
    scanned_pdf,
    truncated_pdf,
    upload,
)

pytestmark = pytest.mark.django_db


def _queued(title="Invoices", actor=None) -> ScanJob:
    job = services.scan_job_create(title=title, settings={"mode": "color"}, actor=actor)
    return services.scan_job_queue(job_id=job.pk, actor=actor)


def _scan_batch(job, agent, *, pages=2, data=None) -> ScanJobBatch:
    seq = selectors.scan_batch_next_seq(job=job)
    services.scan_job_start_batch(job_id=job.pk, agent=agent)
    data = data or scanned_pdf(job_id=job.pk, batch_seq=seq, pages=pages)
    batch, created = services.scan_batch_upload(
        job_id=job.pk, batch_seq=seq, upload=upload(data), agent=agent
    )
    assert created
    return batch


def _preview(agent, *, title="Invoices", batches=1) -> ScanJob:
    job = _queued(title)
    assert services.scan_job_claim(agent=agent).pk == job.pk
    for _ in range(batches):
        _scan_batch(job, agent)
    services.scan_job_finish(job_id=job.pk, agent=agent)
    return services.scan_job_assemble(job_id=job.pk)


def _stored_files() -> list[str]:
    found = []

    def walk(folder):
        dirs, files = default_storage.listdir(folder)
        found.extend(f"{folder}/{name}" for name in files)
        for sub in dirs:
            walk(f"{folder}/{sub}")

    if default_storage.exists("scanning"):
        walk("scanning")
    return found


# --- create / edit / queue ---------------------------------------------------------------


def test_a_new_job_is_a_draft_with_default_settings_merged(operator):
    job = services.scan_job_create(title="  Contracts ", settings={"mode": "color"}, actor=operator)

    assert job.status == ScanJobStatus.DRAFT
    assert job.title == "Contracts"
    assert job.settings == {"mode": "color", "resolution": 300, "source": "adf"}
    assert job.events.get().actor_name == "operator"


def test_bad_settings_are_refused_and_nothing_is_written():
    with pytest.raises(ValidationError) as error:
        services.scan_job_create(title="x", settings={"resolution": 20})

    assert error.value.message_dict["settings"][0].startswith("resolution:")
    assert not ScanJob.objects.exists()


def test_only_a_draft_can_be_edited():
    job = _queued()

    with pytest.raises(InvalidTransition) as error:
        services.scan_job_update(job_id=job.pk, title="Other")

    assert error.value.current == ScanJobStatus.QUEUED
    job.refresh_from_db()
    assert job.title == "Invoices"


def test_a_preview_can_be_retitled_and_nothing_else_can(agent, operator):
    job = _preview(agent.agent)
    queued = _queued("Queued")
    with pytest.raises(InvalidTransition) as error:
        services.scan_job_retitle(job_id=queued.pk, title="Other")
    assert error.value.current == ScanJobStatus.QUEUED
    with pytest.raises(InvalidInput):
        services.scan_job_retitle(job_id=job.pk, title="  ")

    job = services.scan_job_retitle(job_id=job.pk, title=" March invoices ", actor=operator)

    job.refresh_from_db()
    assert (job.title, job.status) == ("March invoices", ScanJobStatus.PREVIEW)
    event = job.events.latest("id")
    assert (event.code, event.actor) == ("scan_job.retitled", operator)
    queued.refresh_from_db()
    assert queued.title == "Queued"


def test_queue_twice_is_an_invalid_transition_that_changes_nothing():
    job = _queued()
    events = job.events.count()

    with pytest.raises(InvalidTransition) as error:
        services.scan_job_queue(job_id=job.pk)

    assert error.value.as_dict()["current_state"] == "queued"
    assert job.events.count() == events


def test_an_unknown_job_is_not_found():
    with pytest.raises(NotFound):
        services.scan_job_queue(job_id=999_999)


# --- claim -------------------------------------------------------------------------------


def test_claim_takes_the_oldest_queued_job_and_then_the_slot_is_taken(agent):
    first = _queued("first")
    second = _queued("second")

    claimed = services.scan_job_claim(agent=agent.agent)

    assert claimed.pk == first.pk
    assert claimed.status == ScanJobStatus.READY
    assert claimed.agent_id == agent.agent.pk
    other = scan_agent_create(name="other-host").agent
    assert services.scan_job_claim(agent=other) is None
    second.refresh_from_db()
    assert second.status == ScanJobStatus.QUEUED


@pytest.mark.parametrize("started", [False, True], ids=["ready", "scanning"])
def test_a_retried_claim_by_the_same_agent_returns_the_job_it_holds(agent, started):
    # given: the agent claimed a job but the response was lost (and maybe it started a batch)
    first = _queued("first")
    _queued("second")
    claimed = services.scan_job_claim(agent=agent.agent)
    if started:
        services.scan_job_start_batch(job_id=first.pk, agent=agent.agent)
    events = ScanJobEvent.objects.count()

    # when: it claims again
    again = services.scan_job_claim(agent=agent.agent)

    # then: the same job, unchanged, not the next queued one and not None
    assert again is not None
    assert again.pk == claimed.pk == first.pk
    assert again.status == (ScanJobStatus.SCANNING if started else ScanJobStatus.READY)
    assert ScanJobEvent.objects.count() == events
    assert ScanJob.objects.filter(status=ScanJobStatus.QUEUED).count() == 1


def test_claim_with_nothing_queued_returns_none(agent):
    ScanJobFactory(status=ScanJobStatus.DRAFT)
    assert services.scan_job_claim(agent=agent.agent) is None


# --- batches -----------------------------------------------------------------------------


def test_upload_moves_scanning_to_ready_and_counts_pages(agent):
    _queued()
    job = services.scan_job_claim(agent=agent.agent)

    batch = _scan_batch(job, agent.agent, pages=3)

    job.refresh_from_db()
    assert (job.status, job.batch_count) == (ScanJobStatus.READY, 1)
    assert (batch.batch_seq, batch.page_count, batch.status) == (1, 3, BatchStatus.SCANNED)
    assert default_storage.exists(batch.file.name)


def test_the_same_file_again_is_the_same_batch_and_a_different_file_is_a_conflict(agent):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)
    data = scanned_pdf(job_id=job.pk, batch_seq=1)
    batch, created = services.scan_batch_upload(
        job_id=job.pk, batch_seq=1, upload=upload(data), agent=agent.agent
    )

    # when: the agent retries (its response was lost)
    again, created_again = services.scan_batch_upload(
        job_id=job.pk, batch_seq=1, upload=upload(data), agent=agent.agent
    )

    # then: the same batch, counted once
    assert (created, created_again, again.pk) == (True, False, batch.pk)
    job.refresh_from_db()
    assert job.batch_count == 1

    # when: different content under the same batch_seq
    with pytest.raises(Conflict) as error:
        services.scan_batch_upload(
            job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf(pages=5)), agent=agent.agent
        )
    assert error.value.code == "scan_batch.seq_taken"
    assert ScanJobBatch.objects.count() == 1


def test_a_batch_out_of_order_is_refused(agent):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)

    with pytest.raises(Conflict) as error:
        services.scan_batch_upload(
            job_id=job.pk, batch_seq=2, upload=upload(scanned_pdf()), agent=agent.agent
        )

    assert error.value.extra["expected_batch_seq"] == 1
    assert not ScanJobBatch.objects.exists()


def test_upload_while_not_scanning_is_an_invalid_transition(agent):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)

    with pytest.raises(InvalidTransition) as error:
        services.scan_batch_upload(
            job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf()), agent=agent.agent
        )

    assert error.value.current == ScanJobStatus.READY
    assert not ScanJobBatch.objects.exists()


def test_an_upload_to_the_job_the_agent_may_claim_next_is_refused(agent):
    # given: a queued job the agent may see (it is next) but has not claimed
    job = _queued()

    # when / then: an upload does not claim it (queued → ready is the claim's move)
    with pytest.raises(InvalidTransition) as error:
        services.scan_batch_upload(
            job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf()), agent=agent.agent
        )
    assert (error.value.current, error.value.target) == (ScanJobStatus.QUEUED, "ready")
    job.refresh_from_db()
    assert (job.status, job.agent_id) == (ScanJobStatus.QUEUED, None)
    assert not ScanJobBatch.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        b"hello, I am a text file",
        b"%PDF-1.7\nthis is not really a pdf\n%%EOF",
        b"",
    ],
    ids=["text", "fake-header", "empty"],
)
def test_a_non_pdf_upload_is_refused_and_nothing_is_stored(agent, data):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)

    with pytest.raises(ValidationError) as error:
        services.scan_batch_upload(
            job_id=job.pk, batch_seq=1, upload=upload(data), agent=agent.agent
        )

    assert "file" in error.value.message_dict
    job.refresh_from_db()
    assert (job.status, job.batch_count) == (ScanJobStatus.SCANNING, 0)
    assert not ScanJobBatch.objects.exists()
    assert _stored_files() == []


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (truncated_pdf(), "damaged or incomplete (can't find startxref)"),
        (corrupted_stream_pdf(), "damaged or incomplete (unknown compression method)"),
        (blank_pages_pdf(pages=2), "Pages 1, 2 of 2 of the PDF have no content"),
        (pdf_with_a_blank_page(), "Page 2 of 3 of the PDF has no content"),
    ],
    ids=["truncated", "corrupted-stream", "blank-pages", "one-blank-page"],
)
def test_a_pdf_that_would_need_repair_or_lacks_content_is_refused(agent, data, problem):
    # given: a job scanning its first batch
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)

    # when: the batch is a damaged file that qpdf would silently repair, or has empty pages
    with pytest.raises(ValidationError) as error:
        services.scan_batch_upload(
            job_id=job.pk, batch_seq=1, upload=upload(data), agent=agent.agent
        )

    # then: the refusal names the problem and nothing is written
    message = error.value.message_dict["file"][0]
    assert problem in message
    assert plain_sentence(message)
    job.refresh_from_db()
    assert (job.status, job.batch_count) == (ScanJobStatus.SCANNING, 0)
    assert not ScanJobBatch.objects.exists()
    assert _stored_files() == []


def test_an_unreadable_pdf_is_refused_with_a_plain_sentence(agent):
    # given: a file with a PDF header and nothing a reader can use
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)

    # when
    with pytest.raises(ValidationError) as error:
        services.scan_batch_upload(
            job_id=job.pk,
            batch_seq=1,
            upload=upload(b"%PDF-1.7\nthis is not really a pdf\n%%EOF"),
            agent=agent.agent,
        )

    # then: no object repr (<_io.BytesIO object at 0x…>) in the message
    message = error.value.message_dict["file"][0]
    assert plain_sentence(message), message
    assert message.startswith("The PDF is damaged or incomplete")


@override_settings(SCANNING_MAX_BATCH_BYTES=1000)
def test_a_batch_over_the_size_limit_is_refused(agent):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)

    with pytest.raises(ValidationError) as error:
        services.scan_batch_upload(
            job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf(pages=4)), agent=agent.agent
        )

    assert "limit is 1000 bytes" in error.value.message_dict["file"][0]
    assert _stored_files() == []


def test_jam_discard_rescan_keeps_the_scan_order(agent, operator):
    # given: batch 1 fine, batch 2 jammed
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    _scan_batch(job, agent.agent, pages=2)
    jammed = _scan_batch(job, agent.agent, pages=1)

    # when: the operator discards it, the agent rescans (batch 3) and goes on (batch 4)
    services.scan_batch_discard(batch_id=jammed.pk, actor=operator)
    _scan_batch(job, agent.agent, pages=2)
    _scan_batch(job, agent.agent, pages=1)
    services.scan_job_finish(job_id=job.pk, agent=agent.agent)
    job = services.scan_job_assemble(job_id=job.pk)

    # then: the kept batches 1, 3, 4 in that order; batch 2 kept aside, not merged
    assert job.status == ScanJobStatus.PREVIEW
    assert job.batch_count == 3
    assert job.page_count == 5
    with job.file.open("rb") as merged:
        assert page_labels(merged.read()) == [(1, 1), (1, 2), (3, 1), (3, 2), (4, 1)]
    jammed.refresh_from_db()
    assert jammed.status == BatchStatus.DISCARDED
    assert default_storage.exists(jammed.file.name)


def test_discard_twice_or_after_finish_is_refused(agent, operator):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    first = _scan_batch(job, agent.agent)
    second = _scan_batch(job, agent.agent)
    services.scan_batch_discard(batch_id=first.pk, actor=operator)

    with pytest.raises(InvalidTransition):
        services.scan_batch_discard(batch_id=first.pk, actor=operator)
    services.scan_job_finish(job_id=job.pk, agent=agent.agent)
    with pytest.raises(Conflict) as error:
        services.scan_batch_discard(batch_id=second.pk, actor=operator)

    assert error.value.extra["current_state"] == ScanJobStatus.ASSEMBLING
    second.refresh_from_db()
    assert second.status == BatchStatus.SCANNED


def test_finish_without_a_kept_batch_is_refused(agent):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)

    with pytest.raises(Conflict) as error:
        services.scan_job_finish(job_id=job.pk, agent=agent.agent)

    assert error.value.code == "scan_job.no_batches"
    job.refresh_from_db()
    assert job.status == ScanJobStatus.READY


def test_finish_queues_the_assembly_task_after_commit(agent, django_capture_on_commit_callbacks):
    from django_q.models import OrmQ

    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    _scan_batch(job, agent.agent)

    with django_capture_on_commit_callbacks(execute=True):
        services.scan_job_finish(job_id=job.pk, agent=agent.agent)

    queued = [task.func() for task in OrmQ.objects.all()]
    assert queued == ["scanning.tasks.assemble_scan_job_task"]
    assert tuple(OrmQ.objects.get().task["args"]) == (job.pk,)


def test_another_agent_cannot_touch_a_claimed_job(agent):
    other = scan_agent_create(name="intruder").agent
    job = _queued()
    services.scan_job_claim(agent=agent.agent)

    with pytest.raises(NotFound) as error:
        services.scan_job_start_batch(job_id=job.pk, agent=other)

    # the same answer as for a job that does not exist
    assert (error.value.code, error.value.message) == (
        "scan_job.not_found",
        f"Scan job {job.pk} does not exist.",
    )
    job.refresh_from_db()
    assert (job.status, job.agent_id) == (ScanJobStatus.READY, agent.agent.pk)


def test_agent_fail_records_a_sanitised_error(agent):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)

    job = services.scan_job_fail(
        job_id=job.pk, agent=agent.agent, error="paper jam; Authorization: Bearer abc.def"
    )

    assert job.status == ScanJobStatus.FAILED
    assert job.error_code == ErrorCode.AGENT_ERROR
    assert "abc.def" not in job.error
    assert "paper jam" in job.error


# --- assembly -----------------------------------------------------------------------------


def test_assembly_merges_in_batch_seq_order_and_stores_the_sha256(agent):
    job = _preview(agent.agent, batches=3)

    assert job.status == ScanJobStatus.PREVIEW
    assert job.page_count == 6
    assert len(job.file_hash) == 64
    with job.file.open("rb") as merged:
        assert [seq for seq, _page in page_labels(merged.read())] == [1, 1, 2, 2, 3, 3]


def test_a_job_canceled_while_assembling_stays_canceled(agent, operator):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    _scan_batch(job, agent.agent)
    services.scan_job_finish(job_id=job.pk, agent=agent.agent)
    services.scan_job_cancel(job_id=job.pk, actor=operator, reason="wrong paper")

    job = services.scan_job_assemble(job_id=job.pk)

    assert job.status == ScanJobStatus.CANCELED
    assert not job.file


def test_a_broken_batch_fails_the_assembly_and_retry_recovers_it(agent):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    batch = _scan_batch(job, agent.agent)
    services.scan_job_finish(job_id=job.pk, agent=agent.agent)
    good = default_storage.open(batch.file.name).read()
    with open(batch.file.path, "wb") as handle:  # the disk lost it
        handle.write(b"garbage")

    job = services.scan_job_assemble(job_id=job.pk)

    assert job.status == ScanJobStatus.FAILED
    assert job.error_code == ErrorCode.ASSEMBLY_FAILED
    # the message names the batch, not the file's path or qpdf's internals
    assert job.error.startswith("Batch 1 is damaged or incomplete"), job.error
    assert plain_sentence(job.error)
    # when: on call restores the file and retries
    with open(batch.file.path, "wb") as handle:
        handle.write(good)
    job = services.scan_job_retry_assembly(job_id=job.pk)
    assert job.status == ScanJobStatus.PREVIEW
    assert job.error_code == ""


def test_retry_assembly_needs_the_slot_and_the_database_refuses_a_second_active_job(agent):
    # given: a job whose assembly failed, and another job now holding the scanner
    failed = ScanJobFactory(status=ScanJobStatus.FAILED, error_code=ErrorCode.ASSEMBLY_FAILED)
    ScanJobFactory(status=ScanJobStatus.READY)

    with pytest.raises(ScannerBusy) as error:
        services.scan_job_retry_assembly(job_id=failed.pk)

    assert error.value.status_code == 409
    assert error.value.extra["current_state"] == ScanJobStatus.FAILED
    failed.refresh_from_db()
    assert failed.status == ScanJobStatus.FAILED


# --- commit --------------------------------------------------------------------------------


def test_commit_creates_the_document_in_the_inbox_with_the_title(agent, operator):
    job = _preview(agent.agent)

    job = services.scan_job_commit(job_id=job.pk, actor=operator, title="Invoices March")

    assert job.status == ScanJobStatus.COMMITTED
    document = job.document
    assert (document.title, document.sha256, document.page_count) == (
        "Invoices March",
        job.file_hash,
        2,
    )
    assert document.in_inbox
    assert document.source_job_id == job.pk
    assert document.created_by == operator
    assert default_storage.exists(document.file.name)
    with document.file.open("rb") as stored, job.file.open("rb") as preview:
        assert stored.read() == preview.read()


def test_commit_twice_gives_one_document(agent, operator):
    job = _preview(agent.agent)
    services.scan_job_commit(job_id=job.pk, actor=operator)

    with pytest.raises(InvalidTransition) as error:
        services.scan_job_commit(job_id=job.pk, actor=operator)

    assert error.value.current == ScanJobStatus.COMMITTED
    assert Document.objects.count() == 1


def test_the_same_file_from_two_jobs_is_one_document(agent, operator):
    # given: two jobs that scanned byte-identical pages
    pages = scanned_pdf(job_id=1, title="Same pages")
    first = _queued("Scan A")
    services.scan_job_claim(agent=agent.agent)
    _scan_batch(first, agent.agent, data=pages)
    services.scan_job_finish(job_id=first.pk, agent=agent.agent)
    services.scan_job_assemble(job_id=first.pk)
    first = services.scan_job_commit(job_id=first.pk, actor=operator)
    second = _queued("Scan B")
    services.scan_job_claim(agent=agent.agent)
    _scan_batch(second, agent.agent, data=pages)
    services.scan_job_finish(job_id=second.pk, agent=agent.agent)
    second = services.scan_job_assemble(job_id=second.pk)
    assert second.file_hash == first.file_hash

    # when
    second = services.scan_job_commit(job_id=second.pk, actor=operator)

    # then: one document, both jobs link to it, the first title kept
    assert second.status == ScanJobStatus.COMMITTED
    assert Document.objects.count() == 1
    assert second.document_id == first.document_id
    assert Document.objects.get().title == "Scan A"
    # and the second commit says which document its file matched
    document = Document.objects.get()
    assert second.duplicate_of == document and first.duplicate_of is None
    event = second.events.latest("id")
    assert (event.to_status, event.code) == (ScanJobStatus.COMMITTED, "scan_job.duplicate_document")
    assert event.message == (
        f"The file matches document {document.pk} “Scan A”, already in the inbox; "
        "no new document was created."
    )


def test_an_interrupted_commit_is_finished_by_committing_again(agent, operator):
    job = _preview(agent.agent)
    ScanJob.objects.filter(pk=job.pk).update(status=ScanJobStatus.COMMITTING)

    job = services.scan_job_commit(job_id=job.pk, actor=operator)

    assert job.status == ScanJobStatus.COMMITTED
    assert Document.objects.get().pk == job.document_id


def test_commit_before_preview_is_refused(agent):
    job = _queued()
    with pytest.raises(InvalidTransition) as error:
        services.scan_job_commit(job_id=job.pk)
    assert error.value.target == ScanJobStatus.COMMITTING
    assert not Document.objects.exists()


# --- the machine ----------------------------------------------------------------------------


def test_every_move_is_in_the_machine_and_its_event_names_who_made_it(agent, operator):
    # given: a job taken from draft to committed by an operator, an agent and the task
    job = _preview(agent.agent)

    # when
    services.scan_job_commit(job_id=job.pk, actor=operator)

    # then: each event is a move the machine declares, named after its actor
    moves = list(job.events.order_by("id").values_list("from_status", "to_status", "actor_name"))
    assert moves == [
        ("", ScanJobStatus.DRAFT, "system"),
        (ScanJobStatus.DRAFT, ScanJobStatus.QUEUED, "system"),
        (ScanJobStatus.QUEUED, ScanJobStatus.READY, "agent:scanner-host"),
        (ScanJobStatus.READY, ScanJobStatus.SCANNING, "agent:scanner-host"),
        (ScanJobStatus.SCANNING, ScanJobStatus.READY, "agent:scanner-host"),
        (ScanJobStatus.READY, ScanJobStatus.ASSEMBLING, "agent:scanner-host"),
        (ScanJobStatus.ASSEMBLING, ScanJobStatus.PREVIEW, "task:assembly"),
        (ScanJobStatus.PREVIEW, ScanJobStatus.COMMITTING, "operator"),
        (ScanJobStatus.COMMITTING, ScanJobStatus.COMMITTED, "operator"),
    ]
    for source, target, _actor in moves:
        assert SCAN_JOB_STATES.allows(source or None, target)
    assert not job.events.exclude(actor=None).exclude(actor_name="operator").exists()


def test_services_that_allow_fewer_sources_than_the_machine_refuse_the_rest(
    agent, heartbeat, operator
):
    # given: a job failed because its agent was lost (the machine lets it be
    # queued again and assembled, but only through resume and assemble-kept)
    lost = _lost_with_kept_batches(agent.agent, heartbeat)
    events = lost.events.count()

    # when / then: neither queueing nor the agent's finish may take it there
    with pytest.raises(InvalidTransition) as queued:
        services.scan_job_queue(job_id=lost.pk, actor=operator)
    with pytest.raises(InvalidTransition) as finished:
        services.scan_job_finish(job_id=lost.pk, agent=agent.agent)
    assert (queued.value.code, queued.value.current) == (
        "scan_job.invalid_transition",
        ScanJobStatus.FAILED,
    )
    assert (finished.value.code, finished.value.target) == (
        "scan_job.invalid_transition",
        ScanJobStatus.ASSEMBLING,
    )
    lost.refresh_from_db()
    assert (lost.status, lost.events.count()) == (ScanJobStatus.FAILED, events)


def test_the_agent_cannot_fail_a_job_that_is_being_assembled(agent):
    # given: a job the agent finished (assembly may fail it, the agent may not)
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    _scan_batch(job, agent.agent)
    services.scan_job_finish(job_id=job.pk, agent=agent.agent)

    # when / then
    with pytest.raises(InvalidTransition) as error:
        services.scan_job_fail(job_id=job.pk, agent=agent.agent, error="too late")
    assert error.value.current == ScanJobStatus.ASSEMBLING
    job.refresh_from_db()
    assert (job.status, job.error) == (ScanJobStatus.ASSEMBLING, "")


# --- checks ---------------------------------------------------------------------------------


def test_a_lost_agent_fails_the_scanning_job_and_leaves_queued_jobs_alone(agent, heartbeat):
    # given: a job scanning with one batch, another queued, and a heartbeat 10 minutes old
    job = _queued("scanning one")
    waiting = _queued("waiting one")
    services.scan_job_claim(agent=agent.agent)
    _scan_batch(job, agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)
    heartbeat()
    ScanAgentStatus.objects.update(last_heartbeat=timezone.now() - timedelta(minutes=10))

    counts = services.scan_agent_check()

    job.refresh_from_db()
    waiting.refresh_from_db()
    assert (job.status, job.error_code) == (ScanJobStatus.FAILED, "agent.lost")
    assert job.batches.filter(status=BatchStatus.SCANNED).count() == 1
    assert waiting.status == ScanJobStatus.QUEUED
    assert counts["failed_agent_lost"] == 1 and counts["agent_stale"] == 1
    # and the slot is free again for the waiting job
    assert services.scan_job_claim(agent=agent.agent).pk == waiting.pk


def _lost_with_kept_batches(agent, heartbeat, *, batches=1, title="Lost") -> ScanJob:
    """A job whose agent went silent after scanning ``batches`` batches, failed
    by the scheduled check with agent.lost."""
    job = _queued(title)
    services.scan_job_claim(agent=agent)
    for _ in range(batches):
        _scan_batch(job, agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent)
    heartbeat()
    ScanAgentStatus.objects.update(last_heartbeat=timezone.now() - timedelta(minutes=10))
    services.scan_agent_check()
    job.refresh_from_db()
    assert (job.status, job.error_code) == (ScanJobStatus.FAILED, ErrorCode.AGENT_LOST)
    return job


def test_a_resumed_job_is_queued_again_and_the_agent_scans_on_at_the_next_batch(
    agent, heartbeat, operator
):
    # given: a job lost with batch 1 kept, and a job queued after it
    job = _lost_with_kept_batches(agent.agent, heartbeat)
    later = _queued("queued later")

    # when: the operator resumes it
    resumed = services.scan_job_resume(job_id=job.pk, actor=operator)

    # then: it is queued again, its batch kept and its error cleared
    assert (resumed.status, resumed.error_code, resumed.error) == (ScanJobStatus.QUEUED, "", "")
    assert resumed.agent_id is None and resumed.finished_at is None
    event = resumed.events.latest("id")
    assert (event.from_status, event.to_status, event.actor_name) == (
        ScanJobStatus.FAILED,
        ScanJobStatus.QUEUED,
        "operator",
    )
    assert event.message == "Queued again with 1 kept batch(es); scanning goes on at batch 2."
    # and the next claim gives it (ahead of the later job) to an agent, at batch 2
    heartbeat()
    claimed = services.scan_job_claim(agent=agent.agent)
    assert claimed.pk == job.pk and selectors.scan_batch_next_seq(job=claimed) == 2
    _scan_batch(claimed, agent.agent, pages=3)
    services.scan_job_finish(job_id=job.pk, agent=agent.agent)
    job = services.scan_job_assemble(job_id=job.pk)
    assert (job.status, job.batch_count, job.page_count) == (ScanJobStatus.PREVIEW, 2, 5)
    with job.file.open("rb") as merged:
        assert [seq for seq, _ in page_labels(merged)] == [1, 1, 2, 2, 2]
    later.refresh_from_db()
    assert later.status == ScanJobStatus.QUEUED


def test_a_resumed_job_waits_while_another_job_holds_the_scanner(agent, heartbeat, operator):
    # given: a lost job, and since then another job took the scanner
    job = _lost_with_kept_batches(agent.agent, heartbeat)
    heartbeat()
    holder = _queued("holder")
    assert services.scan_job_claim(agent=agent.agent).pk == holder.pk

    # when
    services.scan_job_resume(job_id=job.pk, actor=operator)

    # then: it waits in the queue; the holder keeps the scanner
    job.refresh_from_db()
    holder.refresh_from_db()
    assert (job.status, holder.status) == (ScanJobStatus.QUEUED, ScanJobStatus.READY)
    assert ScanJob.objects.filter(status__in=ACTIVE_STATUSES).count() == 1
    assert services.scan_job_claim(agent=scan_agent_create(name="second").agent) is None
    # until the holder lets go
    services.scan_job_cancel(job_id=holder.pk, actor=operator)
    assert services.scan_job_claim(agent=agent.agent).pk == job.pk


def test_the_kept_batches_of_a_lost_job_can_be_assembled(
    agent, heartbeat, operator, django_capture_on_commit_callbacks
):
    # given: a job lost with two batches kept
    job = _lost_with_kept_batches(agent.agent, heartbeat, batches=2)

    # when: the operator assembles what was kept (the merge is queued as a task)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assembling = services.scan_job_assemble_kept(job_id=job.pk, actor=operator)
    assert assembling.status == ScanJobStatus.ASSEMBLING and len(callbacks) == 1
    job = services.scan_job_assemble(job_id=job.pk)

    # then: the preview holds the kept batches in order
    assert (job.status, job.page_count, job.error_code) == (ScanJobStatus.PREVIEW, 4, "")
    with job.file.open("rb") as merged:
        assert [seq for seq, _ in page_labels(merged)] == [1, 1, 2, 2]
    assert job.events.filter(code="scan_job.assembling_kept").count() == 1


def test_assembling_kept_batches_needs_the_scanner_slot(agent, heartbeat, operator):
    # given: a lost job, and another job holding the scanner
    job = _lost_with_kept_batches(agent.agent, heartbeat)
    heartbeat()
    holder = _queued("holder")
    services.scan_job_claim(agent=agent.agent)

    # when / then: the database refuses a second active job
    with pytest.raises(ScannerBusy) as error:
        services.scan_job_assemble_kept(job_id=job.pk, actor=operator, run_now=True)

    assert error.value.extra["active_job"] == holder.pk
    job.refresh_from_db()
    assert (job.status, job.error_code) == (ScanJobStatus.FAILED, ErrorCode.AGENT_LOST)
    assert ScanJob.objects.filter(status__in=ACTIVE_STATUSES).count() == 1


def test_only_a_job_whose_agent_was_lost_can_be_resumed_or_assembled(agent, operator):
    # given: a job failed by its agent, and a queued job
    failed = _queued("reported")
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_fail(job_id=failed.pk, agent=agent.agent, error="scanner on fire")
    queued = _queued("waiting")

    for service in (services.scan_job_resume, services.scan_job_assemble_kept):
        with pytest.raises(Conflict) as not_resumable:
            service(job_id=failed.pk, actor=operator)
        with pytest.raises(InvalidTransition):
            service(job_id=queued.pk, actor=operator)
        assert not_resumable.value.code == ErrorCode.NOT_RESUMABLE

    failed.refresh_from_db()
    queued.refresh_from_db()
    assert (failed.status, queued.status) == (ScanJobStatus.FAILED, ScanJobStatus.QUEUED)


def test_a_lost_job_without_a_kept_batch_is_resumed_not_assembled(agent, heartbeat, operator):
    job = _lost_with_kept_batches(agent.agent, heartbeat, batches=0)

    with pytest.raises(Conflict) as error:
        services.scan_job_assemble_kept(job_id=job.pk, actor=operator)

    assert error.value.code == "scan_job.no_batches"
    assert services.scan_job_resume(job_id=job.pk, actor=operator).status == ScanJobStatus.QUEUED


def test_a_live_agent_keeps_its_scanning_job(agent, heartbeat):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)
    heartbeat()

    counts = services.scan_agent_check()

    job.refresh_from_db()
    assert job.status == ScanJobStatus.SCANNING
    assert counts == {
        "checked": 1,
        "agent_stale": 0,
        "failed_agent_lost": 0,
        "failed_stalled": 0,
        "canceled_idle": 0,
        "assembly_requeued": 0,
    }


def test_queued_jobs_are_never_touched_by_a_silent_agent():
    ScanJobFactory(status=ScanJobStatus.QUEUED)
    ScanAgentStatus.objects.update(last_heartbeat=None)

    counts = services.scan_agent_check()

    assert ScanJob.objects.get().status == ScanJobStatus.QUEUED
    assert counts["checked"] == 0 and counts["agent_stale"] == 1


@override_settings(SCANNING_READY_IDLE_TIMEOUT=600)
def test_an_idle_ready_job_is_canceled_with_the_reason_freeing_the_slot(agent, heartbeat):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    heartbeat()
    ScanJob.objects.filter(pk=job.pk).update(
        last_activity_at=timezone.now() - timedelta(minutes=11)
    )
    waiting = _queued("next")

    counts = services.scan_agent_check()

    job.refresh_from_db()
    assert job.status == ScanJobStatus.CANCELED
    assert job.error_code == ErrorCode.IDLE_TIMEOUT
    assert "idle" in job.error
    assert counts["canceled_idle"] == 1
    assert (
        ScanJobEvent.objects.filter(job=job, to_status="canceled")
        .get()
        .actor_name.startswith("schedule")
    )
    assert services.scan_job_claim(agent=agent.agent).pk == waiting.pk


@override_settings(SCANNING_READY_IDLE_TIMEOUT=600)
def test_a_recently_active_ready_job_is_kept(agent, heartbeat):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    heartbeat()

    services.scan_agent_check()

    job.refresh_from_db()
    assert job.status == ScanJobStatus.READY


@override_settings(SCANNING_SCAN_STALL_TIMEOUT=60)
def test_a_scanning_job_without_progress_fails_as_stalled_even_with_a_heartbeat(agent, heartbeat):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)
    ScanJob.objects.filter(pk=job.pk).update(last_progress_at=timezone.now() - timedelta(minutes=5))
    heartbeat()

    counts = services.scan_agent_check()

    job.refresh_from_db()
    assert (job.status, job.error_code) == (ScanJobStatus.FAILED, ErrorCode.STALLED)
    assert counts["failed_stalled"] == 1


# --- a commit that breaks off -----------------------------------------------------------


def _document_files() -> list[str]:
    if not default_storage.exists("documents"):
        return []
    found = []
    for folder in default_storage.listdir("documents")[0]:
        found.extend(default_storage.listdir(f"documents/{folder}")[1])
    return found


@pytest.fixture
def disk_full(monkeypatch):
    """Writing a document file fails as on a full disk. A full disk has no
    local stand-in, so the storage's low-level ``_save`` is replaced for
    ``documents/`` only; everything else is stored for real."""
    import errno

    from django.core.files.storage import FileSystemStorage

    original = FileSystemStorage._save

    def _save(self, name, content):
        if name.startswith("documents/"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", _save)
    return monkeypatch


def test_a_commit_whose_preview_file_is_gone_fails_the_job_and_frees_the_scanner(agent, operator):
    job = _preview(agent.agent)
    default_storage.delete(job.file.name)
    waiting = _queued("next")

    with pytest.raises(Conflict) as error:
        services.scan_job_commit(job_id=job.pk, actor=operator)

    assert error.value.code == ErrorCode.FILE_MISSING == "scan_job.file_missing"
    assert error.value.extra["current_state"] == ScanJobStatus.FAILED
    job.refresh_from_db()
    assert (job.status, job.error_code) == (ScanJobStatus.FAILED, ErrorCode.FILE_MISSING)
    assert job.events.latest("id").code == ErrorCode.FILE_MISSING
    assert not Document.objects.exists()
    # the scanner is free again: the next job can be claimed
    assert services.scan_job_claim(agent=agent.agent).pk == waiting.pk


def test_a_commit_whose_copy_fails_goes_back_to_preview_and_commits_later(
    agent, operator, disk_full
):
    job = _preview(agent.agent)

    with pytest.raises(Conflict) as error:
        services.scan_job_commit(job_id=job.pk, actor=operator, title="Renamed")

    assert error.value.code == ErrorCode.COMMIT_FAILED
    assert error.value.extra["current_state"] == ScanJobStatus.PREVIEW
    assert "No space left on device" in error.value.message
    job.refresh_from_db()
    assert job.status == ScanJobStatus.PREVIEW
    assert not Document.objects.exists()
    assert _document_files() == []

    # when: the disk has room again
    disk_full.undo()
    job = services.scan_job_commit(job_id=job.pk, actor=operator)

    # then: committed under the title given the first time
    assert job.status == ScanJobStatus.COMMITTED
    assert job.document.title == "Renamed"


def test_a_job_left_in_committing_can_be_canceled(agent, operator):
    job = _preview(agent.agent)
    ScanJob.objects.filter(pk=job.pk).update(status=ScanJobStatus.COMMITTING)

    job = services.scan_job_cancel(job_id=job.pk, actor=operator)

    assert job.status == ScanJobStatus.CANCELED
    assert selectors.scan_job_active_get() is None


def test_a_committing_job_whose_document_exists_is_finished_not_canceled(agent, operator):
    # given: a commit that copied the file into the inbox and then broke off
    job = _preview(agent.agent)
    ScanJob.objects.filter(pk=job.pk).update(status=ScanJobStatus.COMMITTING)
    job.refresh_from_db()
    document, created = services.document_get_or_create(job=job, actor=operator)
    assert created

    with pytest.raises(Conflict) as error:
        services.scan_job_cancel(job_id=job.pk, actor=operator)

    assert error.value.code == ErrorCode.DOCUMENT_EXISTS
    job.refresh_from_db()
    assert job.status == ScanJobStatus.COMMITTING
    job = services.scan_job_commit(job_id=job.pk, actor=operator)
    assert (job.status, job.document_id) == (ScanJobStatus.COMMITTED, document.pk)


def test_a_job_canceled_while_its_commit_copies_leaves_no_document(agent, operator, monkeypatch):
    from django.core.files.storage import FileSystemStorage

    job = _preview(agent.agent)
    original = FileSystemStorage._save

    def cancel_then_save(self, name, content):
        # the operator cancels while the commit is copying the file
        if name.startswith("documents/"):
            services.scan_job_cancel(job_id=job.pk, actor=operator)
        return original(self, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", cancel_then_save)

    with pytest.raises(InvalidTransition) as error:
        services.scan_job_commit(job_id=job.pk, actor=operator)

    assert error.value.current == ScanJobStatus.CANCELED
    assert not Document.objects.exists()
    assert _document_files() == []


# --- batch files and the job lock ---------------------------------------------------------


@pytest.fixture
def batch_writes(monkeypatch):
    """Records, for every batch file written, whether a transaction was open
    (a spy: the file is still written to the real storage)."""
    from django.core.files.storage import FileSystemStorage
    from django.db import connection

    original = FileSystemStorage._save
    seen: list[tuple[str, bool]] = []

    def _save(self, name, content):
        if "/batch-" in name:
            seen.append((name, connection.in_atomic_block))
        return original(self, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", _save)
    return seen


@pytest.mark.django_db(transaction=True)
def test_the_batch_file_is_written_before_the_job_is_locked(agent, batch_writes):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)

    batch = _scan_batch(job, agent.agent)

    assert [name for name, _ in batch_writes] == [batch.file.name]
    assert [in_transaction for _, in_transaction in batch_writes] == [False]
    assert default_storage.exists(batch.file.name)


def test_a_refused_or_repeated_upload_leaves_no_file_behind(agent, batch_writes):
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    data = scanned_pdf(job_id=job.pk, batch_seq=1)
    batch = _scan_batch(job, agent.agent, data=data)
    assert _stored_files() == [batch.file.name]

    # a retry of the same file is the same batch: its second copy is removed
    again, created = services.scan_batch_upload(
        job_id=job.pk, batch_seq=1, upload=upload(data), agent=agent.agent
    )
    assert (again.pk, created) == (batch.pk, False)
    # a different file under the same batch_seq, and one out of order, are refused
    with pytest.raises(Conflict):
        services.scan_batch_upload(
            job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf(pages=5)), agent=agent.agent
        )
    with pytest.raises(Conflict):
        services.scan_batch_upload(
            job_id=job.pk, batch_seq=3, upload=upload(scanned_pdf(pages=4)), agent=agent.agent
        )
    # and one while the job is not scanning (ready after the first upload)
    with pytest.raises(InvalidTransition):
        services.scan_batch_upload(
            job_id=job.pk, batch_seq=2, upload=upload(scanned_pdf(pages=3)), agent=agent.agent
        )

    # then: each of them was written, and only the kept batch's file remains
    assert len(batch_writes) == 5
    assert _stored_files() == [batch.file.name]
    assert ScanJobBatch.objects.count() == 1


# --- who may change scanning data -----------------------------------------------------------

OPERATOR_SERVICES = {
    "create": lambda job, actor: services.scan_job_create(title="x", actor=actor),
    "update": lambda job, actor: services.scan_job_update(job_id=job, title="x", actor=actor),
    "retitle": lambda job, actor: services.scan_job_retitle(job_id=job, title="x", actor=actor),
    "queue": lambda job, actor: services.scan_job_queue(job_id=job, actor=actor),
    "cancel": lambda job, actor: services.scan_job_cancel(job_id=job, actor=actor),
    "commit": lambda job, actor: services.scan_job_commit(job_id=job, actor=actor),
    "retry_assembly": lambda job, actor: services.scan_job_retry_assembly(job_id=job, actor=actor),
    "resume": lambda job, actor: services.scan_job_resume(job_id=job, actor=actor),
    "assemble_kept": lambda job, actor: services.scan_job_assemble_kept(job_id=job, actor=actor),
    "discard": lambda job, actor: services.scan_batch_discard(
        batch_id=ScanJobBatch.objects.get(job_id=job).pk, actor=actor
    ),
}


@pytest.mark.parametrize("name", sorted(OPERATOR_SERVICES))
def test_every_operator_service_refuses_a_person_without_the_permission(agent, name):
    # given: a scanning job with a batch, and a signed-in person who may only read
    from tests.operations.factories import UserFactory

    reader = UserFactory(username="reader")
    job = _queued()
    services.scan_job_claim(agent=agent.agent)
    _scan_batch(job, agent.agent)
    events = ScanJobEvent.objects.count()

    # when
    with pytest.raises(OperatorPermissionRequired) as error:
        OPERATOR_SERVICES[name](job.pk, reader)

    # then: a 403 with its code, and nothing changed
    assert (error.value.status_code, error.value.code) == (403, "scanning.permission_denied")
    job.refresh_from_db()
    assert (job.status, job.title, job.batch_count) == (ScanJobStatus.READY, "Invoices", 1)
    assert ScanJob.objects.count() == 1
    assert ScanJobEvent.objects.count() == events
    assert ScanJobBatch.objects.get().status == BatchStatus.SCANNED


def test_the_permission_is_checked_before_the_job_is_looked_up():
    from tests.operations.factories import UserFactory

    # a refusal is the same whether the job exists or not
    with pytest.raises(OperatorPermissionRequired):
        services.scan_job_queue(job_id=424242, actor=UserFactory())


def test_an_assembly_left_by_a_dead_worker_is_queued_again_a_fresh_one_is_not(
    settings, django_capture_on_commit_callbacks
):
    # given: a job assembling for longer than half a run lease
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    settings.RUN_LEASE_SECONDS = 60
    left = ScanJobFactory(status=ScanJobStatus.ASSEMBLING)
    ScanJob.objects.filter(pk=left.pk).update(updated_at=timezone.now() - timedelta(seconds=45))
    ScanJobFactory(status=ScanJobStatus.QUEUED)  # waits for a scanner, not a merge
    OrmQ.objects.all().delete()

    # when: the liveness check runs
    with django_capture_on_commit_callbacks(execute=True):
        counts = services.scan_agent_check()

    # then: the left one's merge is queued again (a live merge would skip it)
    assert counts["assembly_requeued"] == 1
    (queued,) = OrmQ.objects.all()
    package = SignedPackage.loads(queued.payload)
    assert (package["func"], package["args"]) == (
        "scanning.tasks.assemble_scan_job_task",
        (left.pk,),
    )
    # and a merge that began a moment ago is left to its worker
    ScanJob.objects.filter(pk=left.pk).update(updated_at=timezone.now())
    assert services.scan_agent_check()["assembly_requeued"] == 0
