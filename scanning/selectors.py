"""Reads of scanning data: the job holding the scanner, a job's next batch,
the agent's liveness row, what an agent may see, and who may read scanned
content (documents, their files, a job's preview PDF). Selectors never
import services."""

from __future__ import annotations

from django.db.models import Max, QuerySet

from config.errors import NotFound
from scanning.choices import ACTIVE_STATUSES, ScanJobStatus
from scanning.models import Document, ScanAgent, ScanAgentStatus, ScanJob

# The permission the admin's Documents page needs: the API asks the same.
VIEW_DOCUMENT = "scanning.view_document"


def scan_job_not_found(job_id: int) -> NotFound:
    """The one answer for a job that does not exist *or* that the caller may
    not see: the same code and text, so an answer never tells them apart."""
    return NotFound(f"Scan job {job_id} does not exist.", code="scan_job.not_found")


def scan_job_active_get() -> ScanJob | None:
    """The job holding the scanner (the single-active index allows one), if any."""
    return ScanJob.objects.filter(status__in=ACTIVE_STATUSES).first()


def scan_job_next_claimable_id() -> int | None:
    """The queued job a claim would take next (the claim's own order)."""
    return (
        ScanJob.objects.filter(status=ScanJobStatus.QUEUED)
        .order_by("queued_at", "id")
        .values_list("pk", flat=True)
        .first()
    )


def scan_batch_next_seq(*, job: ScanJob) -> int:
    """The batch_seq the job's next batch gets: one past the highest so far,
    discarded batches included (a rescanned jam comes after them)."""
    return (job.batches.aggregate(top=Max("batch_seq"))["top"] or 0) + 1


def scan_agent_status_get() -> ScanAgentStatus:
    """Agent liveness: the one row a migration seeds (an empty, unsaved one
    should it ever have been deleted; the next heartbeat writes it again)."""
    return ScanAgentStatus.objects.filter(id=1).first() or ScanAgentStatus(id=1)


def agent_may_see(job: ScanJob, agent: ScanAgent) -> bool:
    """An agent sees the jobs it claimed (whatever became of them) and the
    one it may claim next; drafts, the rest of the queue and other agents'
    jobs are none of its business."""
    if job.agent_id is not None:
        return job.agent_id == agent.pk
    return job.status == ScanJobStatus.QUEUED and job.pk == scan_job_next_claimable_id()


def scan_job_for_agent(*, job_id: int, agent: ScanAgent) -> ScanJob:
    job = ScanJob.objects.prefetch_related("batches").filter(pk=job_id).first()
    if job is None or not agent_may_see(job, agent):
        raise scan_job_not_found(job_id)
    return job


# --- scanned content --------------------------------------------------------------------


def may_read_scanned_content(user) -> bool:
    """Documents hold what was scanned (contracts, letters): reading them, or a
    job's merged PDF before it becomes one, needs ``scanning.view_document``."""
    return bool(user and user.is_authenticated and user.has_perm(VIEW_DOCUMENT))


def documents_for_reader(*, user) -> QuerySet[Document]:
    """The documents ``user`` may read: all of them, or none (so a document
    they may not read is "not found", like one that does not exist)."""
    if may_read_scanned_content(user):
        return Document.objects.all()
    return Document.objects.none()


def scan_job_preview_for_reader(*, job_id: int, user) -> ScanJob:
    """A job whose merged PDF ``user`` may read; "not found" otherwise."""
    job = ScanJob.objects.filter(pk=job_id).first()
    if job is None or not may_read_scanned_content(user):
        raise scan_job_not_found(job_id)
    return job
