"""django-q2 entry points for scanning. Thin: they call services inside tracked_run."""

from __future__ import annotations

from config.observability.context import log_context
from operations.models import OperationRun
from operations.tracking import RunAlreadyActive, tracked_run
from scanning.choices import ScanJobStatus
from scanning.services import scan_agent_check, scan_files_purge, scan_job_assemble


def check_agent(*, initiator_name: str = "schedule", user=None) -> OperationRun:
    """Run the liveness check as a ``scanning.check_agent`` run. Raises
    ``RunAlreadyActive`` when one is already under way."""
    with tracked_run("scanning.check_agent", initiator_name=initiator_name, user=user) as tracker:
        tracker.add_counts(scan_agent_check())
    return tracker.run


def check_agent_task() -> dict[str, int] | None:
    """The every-minute schedule: the counts, or None when skipped."""
    try:
        run = check_agent()
    except RunAlreadyActive:
        return None
    return run.summary_counts


def assemble_scan_job(job_id: int, *, initiator_name: str = "task") -> OperationRun:
    with (
        log_context(scan_job_id=job_id),  # log lines of the merge name the job
        tracked_run(
            "scanning.assemble_job", inputs={"job_id": job_id}, initiator_name=initiator_name
        ) as tracker,
    ):
        job = scan_job_assemble(job_id=job_id)
        tracker.context["job_status"] = job.status
        if job.status == ScanJobStatus.PREVIEW:
            tracker.add_counts({"batches": job.batch_count, "pages": job.page_count or 0})
        elif job.status == ScanJobStatus.FAILED:
            tracker.incr("failed")
            tracker.add_failure(job.error_code, job.error)
    return tracker.run


def assemble_scan_job_task(job_id: int) -> str | None:
    """Enqueued by ``scan_job_finish`` after commit: the job's status after
    the merge, or None when another worker is assembling it already."""
    try:
        run = assemble_scan_job(job_id)
    except RunAlreadyActive:
        return None
    return run.context.get("job_status")


def purge_files(*, initiator_name: str = "schedule", user=None) -> OperationRun:
    """Remove committed jobs' batch and merged files past the retention period,
    as a ``scanning.purge_files`` run. Raises ``RunAlreadyActive`` when one is
    already under way."""
    with tracked_run("scanning.purge_files", initiator_name=initiator_name, user=user) as tracker:
        counts = scan_files_purge()
        tracker.add_counts(counts)
        if counts["failed"]:
            tracker.add_failure(
                "scanning.file_not_deleted",
                f"{counts['failed']} file(s) could not be deleted; the next run tries again.",
            )
    return tracker.run


def purge_files_task() -> dict[str, int] | None:
    """The daily schedule: the counts, or None when skipped."""
    try:
        run = purge_files()
    except RunAlreadyActive:
        return None
    return run.summary_counts
