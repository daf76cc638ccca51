"""The agent's side of the protocol: heartbeat, claim, start a batch,
upload it, finish, fail. Every call is safe to retry (a lost response is
answered the same way again), and a job the agent may not see is "not
found", exactly as a missing one."""

from __future__ import annotations

import logging
from functools import partial

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from config.errors import Conflict
from config.transitions import lock, lock_first, transition
from operations.sanitize import sanitize_message
from scanning import conf
from scanning.choices import (
    ACTIVE_STATUSES,
    AGENT_FAILABLE_STATUSES,
    SCAN_JOB_STATES,
    ErrorCode,
    ScanJobStatus,
)
from scanning.errors import ScannerBusy
from scanning.models import ScanAgent, ScanAgentStatus, ScanJob, ScanJobBatch
from scanning.pdf import NotAPdf, count_pages, sha256_stream
from scanning.selectors import (
    agent_may_see,
    scan_batch_next_seq,
    scan_job_for_agent,
    scan_job_not_found,
)
from scanning.services.assembly import scan_job_assembly_enqueue
from scanning.services.files import stored_file_delete

logger = logging.getLogger(__name__)


def _check_agent_sees(job: ScanJob, agent: ScanAgent) -> None:
    """A job the agent may not see is "not found", exactly as a missing one:
    another agent's job, a draft, a queued job that is not next."""
    if not agent_may_see(job, agent):
        raise scan_job_not_found(job.pk)


def scan_agent_heartbeat(
    *, agent: ScanAgent, version: str = "", current_job_id: int | None = None
) -> ScanAgentStatus:
    known_job = current_job_id and ScanJob.objects.filter(pk=current_job_id).exists()
    # One row (id 1, seeded by a migration): update_or_create locks it, or
    # creates it again should it ever have been deleted.
    status, _ = ScanAgentStatus.objects.update_or_create(
        id=1,
        defaults={
            "agent": agent,
            "last_heartbeat": timezone.now(),
            "agent_version": (version or "")[:100],
            "current_job_id": current_job_id if known_job else None,
        },
    )
    return status


def scan_job_claim(*, agent: ScanAgent) -> ScanJob | None:
    """The oldest queued job becomes ready for ``agent``; None when there is
    none or the scanner is taken. The index decides races: of two claims that
    both saw a free slot, one wins and the other gets None.

    Idempotent for the agent: a job it already holds (ready or scanning) is
    returned again, so a claim whose response was lost is not dropped."""
    own = (
        ScanJob.objects.filter(
            agent=agent, status__in=[ScanJobStatus.READY, ScanJobStatus.SCANNING]
        )
        .order_by("pk")
        .first()
    )
    if own is not None:
        return own
    if ScanJob.objects.filter(status__in=ACTIVE_STATUSES).exists():
        return None
    with transaction.atomic():
        queued = ScanJob.objects.filter(status=ScanJobStatus.QUEUED).order_by("queued_at", "id")
        # Two claimers do not queue up behind the same row; the loser of the
        # slot is decided by the unique index, not by the row lock.
        job = lock_first(queued, skip_locked=True)
        if job is None:
            return None
        now = timezone.now()
        try:
            return transition(
                job,
                ScanJobStatus.READY,
                actor=agent,
                agent=agent,
                last_activity_at=now,
                last_progress_at=now,
            )
        except ScannerBusy:
            return None


def scan_job_start_batch(*, job_id: int, agent: ScanAgent, batch_seq: int | None = None) -> ScanJob:
    """ready → scanning, for the batch ``batch_seq`` (the job's next one when
    not given). Idempotent: starting the same batch again while it is being
    scanned (the agent retries after a lost response) returns the job as it
    is; another batch_seq than the next one is a 409."""
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        _check_agent_sees(job, agent)
        expected = scan_batch_next_seq(job=job)
        scannable = job.status in (ScanJobStatus.READY, ScanJobStatus.SCANNING)
        if scannable and batch_seq not in (None, expected):
            raise Conflict(
                f"Scan job {job.pk} expects batch {expected} next, not {batch_seq}.",
                code="scan_batch.out_of_order",
                extra={"expected_batch_seq": expected, "current_state": job.status},
            )
        if job.status == ScanJobStatus.SCANNING:
            return job  # this batch is already started: a retry
        now = timezone.now()
        return transition(
            job, ScanJobStatus.SCANNING, actor=agent, last_activity_at=now, last_progress_at=now
        )


def scan_batch_upload(
    *, job_id: int, batch_seq: int, upload: UploadedFile, agent: ScanAgent
) -> tuple[ScanJobBatch, bool]:
    """Store one scanned batch: scanning → ready, batch_count + 1. Returns
    ``(batch, created)``. The same file again under the same batch_seq is the
    same batch (an agent may retry); a different one is a 409. Nothing is
    stored unless the upload is a PDF within the size limit."""
    if batch_seq < 1:
        raise ValidationError({"batch_seq": ["Batches are numbered from 1."]})
    limit = conf.max_batch_bytes()
    if upload.size > limit:
        raise ValidationError(
            {"file": [f"The batch is {upload.size} bytes; the limit is {limit} bytes."]},
            code="too_large",
        )
    scan_job_for_agent(job_id=job_id, agent=agent)  # nothing is written for an unseen job
    sha256 = sha256_stream(upload)
    try:
        page_count = count_pages(getattr(upload, "file", upload))
    except NotAPdf as exc:
        raise ValidationError({"file": [str(exc)]}, code="not_pdf") from None

    # The file is written before the transaction (its name is fixed by job,
    # batch_seq and sha256), so a slow disk never holds the job row lock or
    # SQLite's write lock. It is removed again unless a new batch is kept.
    batch = ScanJobBatch(
        job_id=job_id,
        batch_seq=batch_seq,
        page_count=page_count,
        size_bytes=upload.size,
        sha256=sha256,
    )
    batch.file.save("batch.pdf", upload, save=False)
    stored = batch.file.name
    try:
        with transaction.atomic():
            result = _keep_batch(batch, agent=agent)
    except BaseException:
        stored_file_delete(batch.file.storage, stored)
        raise
    kept, created = result
    if not created and kept.file.name != stored:
        stored_file_delete(batch.file.storage, stored)
    return result


def _keep_batch(batch: ScanJobBatch, *, agent: ScanAgent) -> tuple[ScanJobBatch, bool]:
    """Inside the upload's transaction: the checks and the row for a stored file."""
    job = lock(ScanJob, pk=batch.job_id, not_found=partial(scan_job_not_found, batch.job_id))
    _check_agent_sees(job, agent)
    batch_seq = batch.batch_seq
    existing = job.batches.filter(batch_seq=batch_seq).first()
    if existing is not None:
        if existing.sha256 == batch.sha256:
            return existing, False
        raise Conflict(
            f"Batch {batch_seq} of scan job {job.pk} was already uploaded with different content.",
            code="scan_batch.seq_taken",
            extra={
                "batch_id": existing.pk,
                "batch_seq": batch_seq,
                "current_state": job.status,
            },
        )
    expected = scan_batch_next_seq(job=job)
    if batch_seq != expected:
        raise Conflict(
            f"Scan job {job.pk} expects batch {expected} next, not {batch_seq}.",
            code="scan_batch.out_of_order",
            extra={"expected_batch_seq": expected, "current_state": job.status},
        )
    if job.status != ScanJobStatus.SCANNING:  # queued → ready is the claim's move, not this
        raise SCAN_JOB_STATES.refuse(job, ScanJobStatus.READY)
    now = timezone.now()
    transition(
        job,
        ScanJobStatus.READY,
        actor=agent,
        batch_count=job.batch_count + 1,
        last_activity_at=now,
        last_progress_at=now,
    )
    batch.job = job
    batch.save(force_insert=True)
    return batch, True


def scan_job_finish(*, job_id: int, agent: ScanAgent) -> ScanJob:
    """ready → assembling; the merge runs as a django-q2 task after commit."""
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        _check_agent_sees(job, agent)
        if job.status == ScanJobStatus.READY and job.batch_count < 1:
            raise Conflict(
                f"Scan job {job.pk} has no kept batch to assemble.",
                code="scan_job.no_batches",
                extra={"current_state": job.status},
            )
        if job.status != ScanJobStatus.READY:  # a failed job is assembled again by an operator
            raise SCAN_JOB_STATES.refuse(job, ScanJobStatus.ASSEMBLING)
        now = timezone.now()
        transition(
            job, ScanJobStatus.ASSEMBLING, actor=agent, last_activity_at=now, last_progress_at=now
        )
        transaction.on_commit(lambda: scan_job_assembly_enqueue(job_id=job.pk))
    return job


def scan_job_fail(
    *, job_id: int, agent: ScanAgent, error: str, code: str = ErrorCode.AGENT_ERROR
) -> ScanJob:
    message = sanitize_message(error or "The agent reported a failure.")
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        _check_agent_sees(job, agent)
        if job.status not in AGENT_FAILABLE_STATUSES:  # assembly and commit fail on their own
            raise SCAN_JOB_STATES.refuse(job, ScanJobStatus.FAILED)
        return transition(
            job,
            ScanJobStatus.FAILED,
            actor=agent,
            reason=message,
            audit={"code": code},
            error_code=code,
            error=message,
            finished_at=timezone.now(),
        )
