"""Scan files on disk: the retention purge of committed jobs' batch files and
merged PDFs (the Document keeps its own copy), and deleting a stored file
that is no longer wanted."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from scanning import conf
from scanning.choices import PURGE_FILES_SCHEDULE, ScanJobStatus
from scanning.models import ScanJob, ScanJobBatch
from scanning.services.jobs import scan_job_note

logger = logging.getLogger(__name__)


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
        scan_job_note(
            job=job,
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


def stored_file_delete(storage, name: str) -> None:
    """Delete a file that is no longer wanted (a refused upload, an orphan
    document); one that will not go is logged and left, never an error."""
    try:
        storage.delete(name)
    except OSError:
        logger.warning("could not delete the stored file %s", name)
