"""assembling → preview: the kept batches merged in batch_seq order into one
PDF (pikepdf), its pages counted and its sha256 stored. The merge runs
outside any transaction; only the move to preview (or failed) takes the job
lock. A merge is queued as a django-q2 task after commit, or run here."""

from __future__ import annotations

import logging
import tempfile
from functools import partial

from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from config.transitions import lock, transition
from operations.sanitize import sanitize_message
from scanning.choices import (
    ASSEMBLY_TASK,
    MANAGE_PY,
    SCAN_JOB_STATES,
    BatchStatus,
    ErrorCode,
    ScanJobStatus,
)
from scanning.models import ScanJob, ScanJobBatch
from scanning.pdf import NotAPdf, merge_pdfs, sha256_stream
from scanning.permissions import require_operator
from scanning.selectors import scan_job_not_found

logger = logging.getLogger(__name__)


def scan_job_assembly_enqueue(*, job_id: int) -> None:
    """Queue the merge as a django-q2 task (call it on commit)."""
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
        raise scan_job_not_found(job_id)
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
        except Exception as exc:  # noqa: BLE001 - any failure of the merge fails the job
            # Every failure is logged, naming the job; the details of an
            # unexpected one (paths, qpdf's text) go to the log only: the job
            # keeps a plain sentence.
            logger.warning(
                "assembly of scan job %s failed: %r", job_id, exc, extra={"scan_job_id": job_id}
            )
            if isinstance(exc, NotAPdf):
                return _fail_assembly(job_id, str(exc))
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
            transaction.on_commit(lambda: scan_job_assembly_enqueue(job_id=job.pk))
    if run_now:
        return scan_job_assemble(job_id=job.pk)
    return job
