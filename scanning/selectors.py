"""Reads of scanning data that carry a rule: what an agent may see."""

from __future__ import annotations

from config.errors import NotFound
from scanning.choices import ScanJobStatus
from scanning.models import ScanAgent, ScanJob


def scan_job_not_found(job_id: int) -> NotFound:
    """The one answer for a job that does not exist *or* that the caller may
    not see: the same code and text, so an answer never tells them apart."""
    return NotFound(f"Scan job {job_id} does not exist.", code="scan_job.not_found")


def next_claimable_job_id() -> int | None:
    """The queued job a claim would take next (the claim's own order)."""
    return (
        ScanJob.objects.filter(status=ScanJobStatus.QUEUED)
        .order_by("queued_at", "id")
        .values_list("pk", flat=True)
        .first()
    )


def agent_may_see(job: ScanJob, agent: ScanAgent) -> bool:
    """An agent sees the jobs it claimed (whatever became of them) and the
    one it may claim next; drafts, the rest of the queue and other agents'
    jobs are none of its business."""
    if job.agent_id is not None:
        return job.agent_id == agent.pk
    return job.status == ScanJobStatus.QUEUED and job.pk == next_claimable_job_id()


def scan_job_for_agent(*, job_id: int, agent: ScanAgent) -> ScanJob:
    job = ScanJob.objects.prefetch_related("batches").filter(pk=job_id).first()
    if job is None or not agent_may_see(job, agent):
        raise scan_job_not_found(job_id)
    return job
