"""preview → committing → committed: the previewed PDF is copied into the
inbox as a Document, one per sha256. The copy runs between two short
transactions, so a big file never holds the job lock (or SQLite's write
lock); a copy that fails never leaves the job holding the scanner."""

from __future__ import annotations

import logging
from functools import partial

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import ApplicationError, Conflict, InvalidInput
from config.transitions import lock, transition
from operations.sanitize import sanitize_message
from scanning.choices import ErrorCode, ScanJobStatus
from scanning.models import Document, ScanJob
from scanning.permissions import require_operator
from scanning.selectors import scan_job_not_found
from scanning.services.files import stored_file_delete

logger = logging.getLogger(__name__)


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
        document, created = document_get_or_create(job=job, actor=actor)
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
                reason=document_duplicate_message(document) if duplicate else "",
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


def document_duplicate_message(document: Document) -> str:
    """What a commit says when its file is already in the inbox."""
    return (
        f"The file matches document {document.pk} “{document.title}”, already in the inbox; "
        "no new document was created."
    )


def document_get_or_create(*, job: ScanJob, actor=None) -> tuple[Document, bool]:
    """The inbox document for the job's file and whether this call created it
    (``scan_job_commit``'s copy, run after its checks and outside its locks)."""
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
        stored_file_delete(document.file.storage, name)
