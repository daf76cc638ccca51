"""When the agent goes silent: the scheduled check that fails or cancels the
work it left (so the single scanner slot never deadlocks), and the two ways
an operator goes on from a lost job (resume scanning, or assemble what was
kept)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.errors import Conflict
from config.transitions import lock, transition
from scanning import conf
from scanning.choices import (
    ACTIVE_STATUSES,
    AGENT_CHECK_SCHEDULE,
    RESUMABLE_ERROR_CODES,
    SCAN_JOB_STATES,
    BatchStatus,
    ErrorCode,
    ScanJobStatus,
)
from scanning.models import ScanJob
from scanning.permissions import require_operator
from scanning.selectors import scan_agent_status_get, scan_batch_next_seq, scan_job_not_found
from scanning.services.assembly import scan_job_assemble, scan_job_assembly_enqueue


def scan_agent_check(*, now: datetime | None = None) -> dict[str, int]:
    """The scheduled liveness check. A lost agent fails the job that is
    scanning (``agent.lost``, batches kept); a ``ready`` job idle too long is
    canceled; a ``scanning`` job without progress too long fails. An
    ``assembling`` job whose merge has not finished within a run lease is
    queued for assembly again: a worker that died mid-merge leaves it there,
    and the fresh task takes over its run once the lease has run out (a merge
    still alive keeps its run, and the extra task is skipped). Queued jobs
    are never touched: they wait for a scanner, not for an agent."""
    now = now or timezone.now()
    counts = {
        "checked": 0,
        "agent_stale": 0,
        "failed_agent_lost": 0,
        "failed_stalled": 0,
        "canceled_idle": 0,
        "assembly_requeued": 0,
    }
    stale_before = now - conf.agent_stale_after()

    def agent_is_stale() -> bool:
        heartbeat = scan_agent_status_get().last_heartbeat
        return heartbeat is None or heartbeat < stale_before

    # Half a lease: a merge that just began is not queued twice in the common
    # case, and a dead one is queued again before its lease has run out.
    lease_before = now - timedelta(seconds=settings.RUN_LEASE_SECONDS / 2)
    for job_id in ScanJob.objects.filter(
        status=ScanJobStatus.ASSEMBLING, updated_at__lt=lease_before
    ).values_list("pk", flat=True):
        transaction.on_commit(partial(scan_job_assembly_enqueue, job_id=job_id))
        counts["assembly_requeued"] += 1
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
                    f"No agent heartbeat since {scan_agent_status_get().last_heartbeat or 'ever'}; "
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
        kept, next_seq = job.batch_count, scan_batch_next_seq(job=job)
        return transition(
            job,
            ScanJobStatus.QUEUED,
            actor=actor,
            reason=(
                f"Queued again with {kept} kept batch(es); scanning goes on at batch {next_seq}."
            ),
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
            transaction.on_commit(lambda: scan_job_assembly_enqueue(job_id=job.pk))
    if run_now:
        return scan_job_assemble(job_id=job.pk)
    return job
