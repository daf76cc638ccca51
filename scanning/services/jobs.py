"""The web side of a scan job: what operators do to it before and around
the scanner (create, edit, queue, rename in preview, cancel, discard a jammed
batch), and the job's events that are not moves."""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.utils import timezone

from config.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from config.transitions import lock, transition
from operations.sanitize import sanitize_message
from scanning.choices import (
    DEFAULT_SCAN_SETTINGS,
    SCAN_JOB_STATES,
    BatchStatus,
    ErrorCode,
    ScanJobStatus,
)
from scanning.models import Document, ScanJob, ScanJobBatch
from scanning.permissions import require_operator
from scanning.selectors import scan_job_not_found


def _validated_settings(value: dict | None, *, base: dict | None = None) -> dict:
    merged = {**(base or DEFAULT_SCAN_SETTINGS), **(value or {})}
    return merged


def _full_clean(job: ScanJob) -> None:
    job.full_clean(exclude=["file", "file_hash", "document", "agent", "created_by"])


def scan_job_create(*, title: str, settings: dict | None = None, actor=None) -> ScanJob:
    require_operator(actor)
    # A new job is in the machine's first state (None → draft: the model's
    # default); inserting it is not a move, but it is audited like one.
    job = ScanJob(
        title=(title or "").strip(), settings=_validated_settings(settings), created_by=actor
    )
    _full_clean(job)
    with transaction.atomic():
        job.save(force_insert=True)
        SCAN_JOB_STATES.audit_row(
            job, from_state=None, to_state=job.status, actor=actor, reason="", extra=None
        ).save()
    return job


def scan_job_update(
    *, job_id: int, title: str | None = None, settings: dict | None = None, actor=None
) -> ScanJob:
    """Edit a draft: title and settings (merged over the current ones)."""
    require_operator(actor)
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        if job.status != ScanJobStatus.DRAFT:
            raise InvalidTransition(
                subject=f"Scan job {job.pk}",
                current=job.status,
                target="edited",
                code="scan_job.not_draft",
            )
        if title is not None:
            job.title = title.strip()
        if settings is not None:
            job.settings = _validated_settings(settings, base=job.settings)
        _full_clean(job)
        job.save(update_fields=["title", "settings", "updated_at"])
    return job


def scan_job_retitle(*, job_id: int, title: str, actor=None) -> ScanJob:
    """Rename a job in preview, before it is committed (the commit files the
    document under the job's title unless it is given another)."""
    require_operator(actor)
    new_title = (title or "").strip()
    if not new_title or len(new_title) > 300:
        raise InvalidInput(
            "A title of 1–300 characters is required.",
            code="invalid",
            extra={"errors": {"title": ["A title of 1–300 characters is required."]}},
        )
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        if job.status != ScanJobStatus.PREVIEW:
            raise SCAN_JOB_STATES.refuse(job, "retitled")
        if job.title == new_title:
            return job
        old_title, job.title = job.title, new_title
        job.save(update_fields=["title", "updated_at"])
        scan_job_note(
            job=job,
            actor=actor,
            code="scan_job.retitled",
            message=f"Title {old_title!r} → {new_title!r}.",
        )
    return job


def scan_job_queue(*, job_id: int, actor=None) -> ScanJob:
    require_operator(actor)
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        if job.status != ScanJobStatus.DRAFT:  # a failed job is queued again by resume
            raise SCAN_JOB_STATES.refuse(job, ScanJobStatus.QUEUED)
        return transition(job, ScanJobStatus.QUEUED, actor=actor, queued_at=timezone.now())


def scan_job_cancel(
    *, job_id: int, actor=None, reason: str = "", code: str = ErrorCode.CANCELED_BY_OPERATOR
) -> ScanJob:
    require_operator(actor)
    reason = sanitize_message(reason or "Canceled by an operator.")
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        if (
            job.status == ScanJobStatus.COMMITTING
            and Document.objects.filter(source_job=job).exists()
        ):
            # The copy finished before the commit broke off: commit again to
            # link the document rather than leave it in the inbox for nobody.
            raise Conflict(
                f"Scan job {job.pk} already has its document in the inbox; commit it again "
                "to finish.",
                code=ErrorCode.DOCUMENT_EXISTS,
                extra={"current_state": job.status, "requested_state": ScanJobStatus.CANCELED},
            )
        return transition(
            job,
            ScanJobStatus.CANCELED,
            actor=actor,
            reason=reason,
            audit={"code": code},
            error_code=code,
            error=reason,
            finished_at=timezone.now(),
        )


def scan_batch_discard(*, batch_id: int, actor=None) -> ScanJobBatch:
    """A jammed batch is set aside (its file kept) and the agent rescans it
    under the next batch_seq, so the kept batches stay in scan order."""
    require_operator(actor)
    job_id = ScanJobBatch.objects.filter(pk=batch_id).values_list("job_id", flat=True).first()
    if job_id is None:
        raise _batch_not_found(batch_id)
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        batch = lock(ScanJobBatch, pk=batch_id, not_found=partial(_batch_not_found, batch_id))
        if job.status not in (ScanJobStatus.READY, ScanJobStatus.SCANNING):
            raise Conflict(
                f"Scan job {job.pk} is {job.status}; its batches can no longer change.",
                code="scan_batch.job_closed",
                extra={"current_state": job.status},
            )
        now = timezone.now()
        transition(batch, BatchStatus.DISCARDED, actor=actor, discarded_at=now)
        job.batch_count = max(job.batch_count - 1, 0)
        job.last_activity_at = now
        job.save(update_fields=["batch_count", "last_activity_at", "updated_at"])
        scan_job_note(
            job=job,
            actor=actor,
            code="scan_batch.discarded",
            message=f"Batch {batch.batch_seq} discarded.",
        )
    return batch


def _batch_not_found(batch_id: int) -> NotFound:
    return NotFound(f"Batch {batch_id} does not exist.", code="scan_batch.not_found")


def scan_job_note(*, job: ScanJob, actor, code: str, message: str) -> None:
    """An event that is not a move (a new title, a discarded batch, purged
    files), written in the caller's transaction the way the job's moves
    write theirs."""
    SCAN_JOB_STATES.audit_row(
        job,
        from_state=job.status,
        to_state=job.status,
        actor=actor,
        reason=message,
        extra={"code": code},
    ).save()
