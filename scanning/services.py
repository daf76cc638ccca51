"""Every state change of a scan job goes through these functions.

Each one locks the job row (``config.transitions.lock``; on SQLite the
IMMEDIATE transaction already holds the write lock) and moves it with
``config.transitions.transition``, which checks the move against the job's
machine (``scanning.choices.SCAN_JOB_STATES``), raises ``InvalidTransition``
(409 with the current state) when it is not allowed, and writes the
``ScanJobEvent``. The single active slot is the database's to enforce: a move
into an active state that the partial unique index refuses becomes
``ScannerBusy`` (409). Lock order is always job before batch.

Slow file work (merging, copying into the inbox) happens outside the
transactions, so a big PDF never holds the job lock (or SQLite's write lock).
"""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime
from functools import partial

from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from config.errors import ApplicationError, Conflict, InvalidInput, InvalidTransition, NotFound
from config.transitions import lock, lock_first, transition
from operations.sanitize import sanitize_message
from scanning import conf
from scanning.choices import (
    ACTIVE_STATUSES,
    AGENT_CHECK_SCHEDULE,
    AGENT_FAILABLE_STATUSES,
    ASSEMBLY_TASK,
    DEFAULT_SCAN_SETTINGS,
    MANAGE_PY,
    PURGE_FILES_SCHEDULE,
    RESUMABLE_ERROR_CODES,
    SCAN_JOB_STATES,
    BatchStatus,
    ErrorCode,
    ScanJobStatus,
)
from scanning.errors import OperatorPermissionRequired, ScannerBusy
from scanning.models import Document, ScanAgent, ScanAgentStatus, ScanJob, ScanJobBatch
from scanning.pdf import NotAPdf, count_pages, merge_pdfs, sha256_stream
from scanning.permissions import OPERATE_SCANNER, require_operator
from scanning.selectors import agent_may_see, scan_job_for_agent, scan_job_not_found

__all__ = ["OPERATE_SCANNER", "OperatorPermissionRequired", "ScannerBusy", "require_operator"]

logger = logging.getLogger(__name__)


# --- helpers -------------------------------------------------------------------------


def _note(job: ScanJob, *, actor, code: str, message: str) -> None:
    """An event that is not a move (a new title, a discarded batch, purged files)."""
    SCAN_JOB_STATES.audit_row(
        job,
        from_state=job.status,
        to_state=job.status,
        actor=actor,
        reason=message,
        extra={"code": code},
    ).save()


def _check_agent_sees(job: ScanJob, agent: ScanAgent) -> None:
    """A job the agent may not see is "not found", exactly as a missing one:
    another agent's job, a draft, a queued job that is not next."""
    if not agent_may_see(job, agent):
        raise scan_job_not_found(job.pk)


def _validated_settings(value: dict | None, *, base: dict | None = None) -> dict:
    merged = {**(base or DEFAULT_SCAN_SETTINGS), **(value or {})}
    return merged


def _full_clean(job: ScanJob) -> None:
    job.full_clean(exclude=["file", "file_hash", "document", "agent", "created_by"])


# --- web side --------------------------------------------------------------------------


def scan_job_create(*, title: str, settings: dict | None = None, actor=None) -> ScanJob:
    require_operator(actor)
    job = ScanJob(
        title=(title or "").strip(),
        settings=_validated_settings(settings),
        created_by=actor,
        status=ScanJobStatus.DRAFT,
    )
    _full_clean(job)
    with transaction.atomic():
        job.save(force_insert=True)
        # Created, not moved: the machine's audit row for its first state.
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
        _note(
            job,
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
        raise NotFound(f"Batch {batch_id} does not exist.", code="scan_batch.not_found")
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        batch = lock(ScanJobBatch, pk=batch_id)
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
        _note(
            job,
            actor=actor,
            code="scan_batch.discarded",
            message=f"Batch {batch.batch_seq} discarded.",
        )
    return batch


def scan_job_commit(*, job_id: int, actor=None, title: str | None = None) -> ScanJob:
    """preview → committing → committed, creating the inbox Document (one per
    sha256). A commit interrupted in ``committing`` is finished by committing again.

    When the copy into the inbox fails the job does not stay in ``committing``:
    a preview file that is gone fails the job (``scan_job.file_missing``, the
    scanner is released); any other storage error (disk full) puts it back to
    ``preview`` (``scan_job.commit_failed``) to commit again or cancel. Either
    way the caller gets a 409 with the job's state, never a 500."""
    require_operator(actor)
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        new_title = job.title if title is None else title.strip()
        if not new_title or len(new_title) > 300:
            raise InvalidInput(
                "A title of 1–300 characters is required.",
                code="invalid",
                extra={"errors": {"title": ["A title of 1–300 characters is required."]}},
            )
        transition(job, ScanJobStatus.COMMITTING, actor=actor, title=new_title)
    try:
        document, created = _document_for(job, actor=actor)
    except (OSError, SuspiciousFileOperation) as exc:
        raise _commit_failed(job_id, exc, actor=actor) from exc
    duplicate = not created and document.source_job_id != job_id
    try:
        with transaction.atomic():
            job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
            return transition(
                job,
                ScanJobStatus.COMMITTED,
                actor=actor,
                reason=duplicate_message(document) if duplicate else "",
                audit={"code": ErrorCode.DUPLICATE_DOCUMENT if duplicate else ""},
                document=document,
                finished_at=timezone.now(),
            )
    except ApplicationError:
        # Canceled (or finished by another commit) while we copied: a document
        # this call created for nobody must not stay in the inbox.
        if created:
            _drop_orphan_document(document)
        raise


def duplicate_message(document: Document) -> str:
    """What a commit says when its file is already in the inbox."""
    return (
        f"The file matches document {document.pk} “{document.title}”, already in the inbox; "
        "no new document was created."
    )


def _preview_missing(job: ScanJob) -> bool:
    if not job.file:
        return True
    try:
        return not job.file.storage.exists(job.file.name)
    except (OSError, SuspiciousFileOperation):
        return False  # cannot tell: treat as a transient storage error


def _commit_failed(job_id: int, exc: Exception, *, actor=None) -> Conflict:
    """The copy into the inbox failed: move the job out of ``committing`` and
    return the Conflict that says why."""
    logger.warning("commit of scan job %s failed: %s", job_id, exc, extra={"scan_job_id": job_id})
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        if job.status != ScanJobStatus.COMMITTING:
            raise Conflict(
                f"Scan job {job.pk} could not be committed; it is now {job.status}.",
                code=ErrorCode.COMMIT_FAILED,
                extra={"current_state": job.status},
            )
        if _preview_missing(job):
            message = "The previewed PDF is missing from storage; scan the document again."
            transition(
                job,
                ScanJobStatus.FAILED,
                actor=actor,
                reason=message,
                audit={"code": ErrorCode.FILE_MISSING},
                error_code=ErrorCode.FILE_MISSING,
                error=message,
                finished_at=timezone.now(),
            )
            code = ErrorCode.FILE_MISSING
        else:
            message = sanitize_message(
                f"Copying the PDF into the inbox failed ({type(exc).__name__}: {exc}); "
                "commit again or cancel."
            )
            transition(
                job,
                ScanJobStatus.PREVIEW,
                actor=actor,
                reason=message,
                audit={"code": ErrorCode.COMMIT_FAILED},
            )
            code = ErrorCode.COMMIT_FAILED
    return Conflict(
        f"Scan job {job.pk} could not be committed: {message}",
        code=code,
        extra={"current_state": job.status},
    )


def _drop_orphan_document(document: Document) -> None:
    name = document.file.name
    Document.objects.filter(pk=document.pk).delete()
    if name:
        try:
            document.file.storage.delete(name)
        except OSError:
            logger.warning("could not delete the orphan document file %s", name)


def _document_for(job: ScanJob, *, actor=None) -> tuple[Document, bool]:
    """The inbox document for the job's file and whether this call created it."""
    existing = Document.objects.filter(sha256=job.file_hash).first()
    if existing is not None:
        return existing, False
    if not job.file:
        raise FileNotFoundError(f"scan job {job.pk} has no previewed PDF")
    document = Document(
        title=job.title,
        sha256=job.file_hash,
        page_count=job.page_count or 0,
        size_bytes=job.file.size,
        source_job=job,
        created_by=actor,
    )
    with job.file.open("rb") as source:
        document.file.save("document.pdf", File(source), save=False)
    try:
        with transaction.atomic():
            document.save(force_insert=True)
    except IntegrityError:
        # Someone committed the same file a moment ago: theirs is the document.
        document.file.storage.delete(document.file.name)
        return Document.objects.get(sha256=job.file_hash), False
    except BaseException:
        document.file.storage.delete(document.file.name)
        raise
    return document, True


# --- agent side ------------------------------------------------------------------------


def agent_status() -> ScanAgentStatus:
    status, _ = ScanAgentStatus.objects.get_or_create(id=1)
    return status


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


def active_job() -> ScanJob | None:
    return ScanJob.objects.filter(status__in=ACTIVE_STATUSES).first()


def scan_job_start_batch(*, job_id: int, agent: ScanAgent, batch_seq: int | None = None) -> ScanJob:
    """ready → scanning, for the batch ``batch_seq`` (the job's next one when
    not given). Idempotent: starting the same batch again while it is being
    scanned (the agent retries after a lost response) returns the job as it
    is; another batch_seq than the next one is a 409."""
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        _check_agent_sees(job, agent)
        expected = next_batch_seq(job)
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


def next_batch_seq(job: ScanJob) -> int:
    return (job.batches.aggregate(top=Max("batch_seq"))["top"] or 0) + 1


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
        _delete_quietly(batch.file.storage, stored)
        raise
    kept, created = result
    if not created and kept.file.name != stored:
        _delete_quietly(batch.file.storage, stored)
    return result


def _delete_quietly(storage, name: str) -> None:
    try:
        storage.delete(name)
    except OSError:
        logger.warning("could not delete the stored file %s", name)


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
    expected = next_batch_seq(job)
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
        transaction.on_commit(lambda: enqueue_assembly(job.pk))
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


# --- assembly ----------------------------------------------------------------------------


def enqueue_assembly(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task("scanning.tasks.assemble_scan_job_task", job_id)


def _source(storage, name: str):
    """A path for local storage (fastest for qpdf), else an open stream."""
    try:
        return storage.path(name)
    except NotImplementedError:
        return storage.open(name, "rb")


def scan_job_assemble(*, job_id: int) -> ScanJob:
    """Merge the kept batches in batch_seq order: assembling → preview, with
    page count and sha256. A job that is no longer assembling (canceled, or a
    duplicate delivery of the task) is left as it is."""
    job = ScanJob.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"Scan job {job_id} does not exist.", code="scan_job.not_found")
    if job.status != ScanJobStatus.ASSEMBLING:
        return job
    kept = list(
        job.batches.filter(status=BatchStatus.SCANNED)
        .order_by("batch_seq")
        .values_list("batch_seq", "file")
    )
    storage = ScanJobBatch._meta.get_field("file").storage
    with tempfile.TemporaryFile(suffix=".pdf") as merged:
        try:
            if not kept:
                raise NotAPdf("The job has no kept batch to assemble.")
            page_count = merge_pdfs(
                ((f"Batch {seq}", _source(storage, name)) for seq, name in kept), merged
            )
        except NotAPdf as exc:
            return _fail_assembly(job_id, str(exc))
        except Exception as exc:  # noqa: BLE001 - any failure of the merge fails the job
            # The details (paths, qpdf's text) go to the log, not to the job.
            logger.warning(
                "assembly of scan job %s failed: %r", job_id, exc, extra={"scan_job_id": job_id}
            )
            return _fail_assembly(
                job_id, f"The batches could not be merged ({type(exc).__name__})."
            )
        sha256 = sha256_stream(merged)
        with transaction.atomic():
            job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
            if job.status != ScanJobStatus.ASSEMBLING:
                return job
            job.file_hash = sha256  # the stored file's name is made from it
            job.file.save("assembled.pdf", File(merged), save=False)
            stored = job.file.name
            try:
                return transition(
                    job,
                    ScanJobStatus.PREVIEW,
                    actor=ASSEMBLY_TASK,
                    file=job.file,
                    file_hash=sha256,
                    page_count=page_count,
                    last_activity_at=timezone.now(),
                )
            except Exception:
                job.file.storage.delete(stored)
                raise


def _fail_assembly(job_id: int, error: str) -> ScanJob:
    message = sanitize_message(error)
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        if job.status != ScanJobStatus.ASSEMBLING:
            return job
        return transition(
            job,
            ScanJobStatus.FAILED,
            actor=ASSEMBLY_TASK,
            reason=message,
            audit={"code": ErrorCode.ASSEMBLY_FAILED},
            error_code=ErrorCode.ASSEMBLY_FAILED,
            error=message,
            finished_at=timezone.now(),
        )


def scan_job_retry_assembly(
    *, job_id: int, actor=None, run_now: bool = True, enqueue: bool = True
) -> ScanJob:
    """Assemble again: a job stuck in assembling, or one whose assembly
    failed (it must win the scanner slot back: the index may refuse → 409).

    ``run_now`` merges here and now; otherwise the merge is queued as a task
    after commit, unless ``enqueue`` is False (the caller runs the task body
    itself, as ``manage.py scanning_retry_assembly`` does)."""
    require_operator(actor)
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        if job.status == ScanJobStatus.FAILED and job.error_code == ErrorCode.ASSEMBLY_FAILED:
            transition(
                job,
                ScanJobStatus.ASSEMBLING,
                actor=actor or MANAGE_PY,
                audit={"code": "scan_job.assembly_retried"},
                error_code="",
                error="",
                finished_at=None,
                last_activity_at=timezone.now(),
            )
        elif job.status != ScanJobStatus.ASSEMBLING:
            raise SCAN_JOB_STATES.refuse(job, ScanJobStatus.ASSEMBLING)
        if not run_now and enqueue:
            transaction.on_commit(lambda: enqueue_assembly(job.pk))
    if run_now:
        return scan_job_assemble(job_id=job.pk)
    return job


# --- after a lost agent ---------------------------------------------------------------------


def _check_resumable(job: ScanJob, target: str) -> None:
    """Only a job that failed because its agent went away (its batches kept)."""
    if job.status != ScanJobStatus.FAILED:
        raise SCAN_JOB_STATES.refuse(job, target)
    if job.error_code not in RESUMABLE_ERROR_CODES:
        raise Conflict(
            f"Scan job {job.pk} failed with {job.error_code or 'no code'}; only a job whose "
            f"agent was lost ({', '.join(RESUMABLE_ERROR_CODES)}) can be resumed or assembled "
            "from its kept batches.",
            code=ErrorCode.NOT_RESUMABLE,
            extra={"current_state": job.status, "requested_state": target},
        )


def scan_job_resume(*, job_id: int, actor=None) -> ScanJob:
    """failed (agent lost, or stalled) → queued, keeping the scanned batches:
    the next claim hands the job to an agent, which scans on at the next
    batch_seq. The job keeps its place in the queue (its first queued_at), so
    it is scanned before jobs queued after it. Queued is not an active state:
    the scanner slot is taken only by the claim, as for any job."""
    require_operator(actor)
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        _check_resumable(job, ScanJobStatus.QUEUED)
        kept, next_seq = job.batch_count, next_batch_seq(job)
        return transition(
            job,
            ScanJobStatus.QUEUED,
            actor=actor,
            reason=f"Queued again with {kept} kept batch(es); scanning goes on at batch {next_seq}.",
            audit={"code": "scan_job.resumed"},
            agent=None,  # any agent may claim it; the lost one may never come back
            queued_at=job.queued_at or timezone.now(),
            error_code="",
            error="",
            finished_at=None,
            last_activity_at=None,
            last_progress_at=None,
        )


def scan_job_assemble_kept(
    *, job_id: int, actor=None, run_now: bool = False, enqueue: bool = True
) -> ScanJob:
    """failed (agent lost, or stalled) → assembling: merge the batches scanned
    before the agent went away, as if it had finished. The job must win the
    scanner slot back (the index may refuse → 409) and have a kept batch.
    ``run_now`` and ``enqueue`` as for ``scan_job_retry_assembly``."""
    require_operator(actor)
    with transaction.atomic():
        job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
        _check_resumable(job, ScanJobStatus.ASSEMBLING)
        if not job.batches.filter(status=BatchStatus.SCANNED).exists():
            raise Conflict(
                f"Scan job {job.pk} has no kept batch to assemble; resume it instead.",
                code="scan_job.no_batches",
                extra={"current_state": job.status},
            )
        transition(
            job,
            ScanJobStatus.ASSEMBLING,
            actor=actor,
            reason=f"Assembling the {job.batch_count} batch(es) kept after the agent was lost.",
            audit={"code": "scan_job.assembling_kept"},
            error_code="",
            error="",
            finished_at=None,
            last_activity_at=timezone.now(),
        )
        if not run_now and enqueue:
            transaction.on_commit(lambda: enqueue_assembly(job.pk))
    if run_now:
        return scan_job_assemble(job_id=job.pk)
    return job


# --- checks ---------------------------------------------------------------------------------


def scan_check_agent(*, now: datetime | None = None) -> dict[str, int]:
    """The scheduled liveness check. A lost agent fails the job that is
    scanning (``agent.lost``, batches kept); a ``ready`` job idle too long is
    canceled; a ``scanning`` job without progress too long fails. Queued jobs
    are never touched: they wait for a scanner, not for an agent."""
    now = now or timezone.now()
    counts = {
        "checked": 0,
        "agent_stale": 0,
        "failed_agent_lost": 0,
        "failed_stalled": 0,
        "canceled_idle": 0,
    }
    stale_before = now - conf.agent_stale_after()

    def agent_is_stale() -> bool:
        heartbeat = agent_status().last_heartbeat
        return heartbeat is None or heartbeat < stale_before

    stale = agent_is_stale()
    counts["agent_stale"] = int(stale)
    for job_id in ScanJob.objects.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True):
        counts["checked"] += 1
        with transaction.atomic():
            job = lock(ScanJob, pk=job_id, not_found=partial(scan_job_not_found, job_id))
            if job.status == ScanJobStatus.SCANNING and stale and agent_is_stale():
                _system_end(
                    job,
                    ScanJobStatus.FAILED,
                    ErrorCode.AGENT_LOST,
                    f"No agent heartbeat since {agent_status().last_heartbeat or 'ever'}; "
                    "the batches scanned so far are kept.",
                    now,
                )
                counts["failed_agent_lost"] += 1
            elif (
                job.status == ScanJobStatus.SCANNING
                and (job.last_progress_at or job.updated_at) < now - conf.scan_stall_timeout()
            ):
                _system_end(
                    job,
                    ScanJobStatus.FAILED,
                    ErrorCode.STALLED,
                    "The scan made no progress within the stall timeout.",
                    now,
                )
                counts["failed_stalled"] += 1
            elif (
                job.status == ScanJobStatus.READY
                and (job.last_activity_at or job.updated_at) < now - conf.ready_idle_timeout()
            ):
                _system_end(
                    job,
                    ScanJobStatus.CANCELED,
                    ErrorCode.IDLE_TIMEOUT,
                    "Canceled: the job sat ready with no activity past the idle timeout, "
                    "so the scanner was released.",
                    now,
                )
                counts["canceled_idle"] += 1
    return counts


def _system_end(job: ScanJob, target: str, code: str, message: str, now: datetime) -> None:
    transition(
        job,
        target,
        actor=AGENT_CHECK_SCHEDULE,
        reason=message,
        audit={"code": code},
        error_code=code,
        error=message,
        finished_at=now,
    )


# --- housekeeping -------------------------------------------------------------------------------


def scan_files_purge(*, now: datetime | None = None) -> dict[str, int]:
    """Remove the batch files and the merged PDF of jobs committed longer ago
    than ``SCANNING_FILE_RETENTION_DAYS``: the Document keeps its own copy.

    Files are deleted first and their fields cleared after, job by job, so a
    file that could not be deleted is tried again by the next run, and a run
    repeated finds nothing left (idempotent). Counts: jobs purged, files
    removed, files already gone, bytes freed, files that could not be deleted."""
    now = now or timezone.now()
    counts = {"jobs": 0, "files_removed": 0, "files_missing": 0, "bytes_freed": 0, "failed": 0}
    due = (
        ScanJob.objects.filter(
            status=ScanJobStatus.COMMITTED, finished_at__lt=now - conf.file_retention()
        )
        .filter(Q(file__gt="") | Q(batches__file__gt=""))
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for job_id in due:
        _purge_job_files(job_id, counts)
    return counts


def _purge_job_files(job_id: int, counts: dict[str, int]) -> None:
    job = ScanJob.objects.select_related("document").get(pk=job_id)
    # The document's own file is never deleted, even if a name ever matched it.
    kept = {job.document.file.name} if job.document and job.document.file else set()

    def gone(storage, name: str) -> bool:
        return name in kept or _remove_file(storage, name, counts)

    batch_storage = ScanJobBatch._meta.get_field("file").storage
    removed_batches = [
        batch_id
        for batch_id, name in job.batches.exclude(file="").values_list("pk", "file")
        if gone(batch_storage, name)
    ]
    merged_removed = bool(job.file) and gone(job.file.storage, job.file.name)
    if not removed_batches and not merged_removed:
        return
    with transaction.atomic():
        ScanJobBatch.objects.filter(pk__in=removed_batches).update(file="")
        if merged_removed:
            job.file = ""
            job.save(update_fields=["file"])  # a watched model: save(), never update()
        _note(
            job,
            actor=PURGE_FILES_SCHEDULE,
            code="scan_job.files_purged",
            message=(
                f"{len(removed_batches)} batch file(s)"
                f"{' and the merged PDF' if merged_removed else ''} removed after the "
                f"retention period; document {job.document_id} keeps its file."
            ),
        )
    counts["jobs"] += 1


def _remove_file(storage, name: str, counts: dict[str, int]) -> bool:
    """Delete one stored file; True when it is gone (now or already)."""
    try:
        size = storage.size(name)
    except FileNotFoundError:
        counts["files_missing"] += 1
        return True
    except OSError:
        size = 0
    try:
        storage.delete(name)
    except OSError as exc:
        logger.warning("could not delete the scan file %s: %s", name, exc)
        counts["failed"] += 1
        return False
    counts["files_removed"] += 1
    counts["bytes_freed"] += size
    return True
