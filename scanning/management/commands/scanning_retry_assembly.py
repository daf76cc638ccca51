from django.core.management.base import CommandError

from config.commands import BureauCommand
from scanning.choices import ScanJobStatus
from scanning.services import scan_job_retry_assembly
from scanning.tasks import assemble_scan_job


class Command(BureauCommand):
    help = (
        "Assemble a scan job's PDF again, now, in this process: a job stuck in "
        "assembling, or one whose assembly failed (if the scanner slot is free)."
    )

    def add_arguments(self, parser):
        parser.add_argument("job_id", type=int)

    def run(self, *args, job_id: int, **options):
        # Back to assembling (or already there), then the same tracked
        # task body the cluster runs, here: nothing is queued for the cluster.
        scan_job_retry_assembly(job_id=job_id, run_now=False, enqueue=False)
        run = assemble_scan_job(job_id, initiator_name="manage.py scanning_retry_assembly")
        status = run.context.get("job_status")
        if status == ScanJobStatus.PREVIEW:
            pages = run.summary_counts.get("pages", 0)
            self.stdout.write(
                self.style.SUCCESS(f"job {job_id} assembled: {pages} pages, preview ready")
            )
            return
        failures = "; ".join(f["message"] for f in run.failure_summary) or "see the job"
        raise CommandError(f"job {job_id} is {status} after assembly: {failures}")
