from datetime import timedelta

from django.apps import AppConfig, apps


class ScanningConfig(AppConfig):
    name = "scanning"
    verbose_name = "Scanning"

    def ready(self) -> None:
        from operations.catalog import operation_catalog
        from operations.choices import RunScope
        from operations.schedules import schedule_registry

        operation_catalog.register(
            "scanning.check_agent",
            label="Scanning: check the scan agent",
            scope=RunScope.WORKSPACE,
            summary_keys=(
                "checked",
                "agent_stale",
                "failed_agent_lost",
                "assembly_requeued",
                "failed_stalled",
                "canceled_idle",
            ),
            stale_queued_after=timedelta(minutes=5),
            stale_running_after=timedelta(minutes=5),
        )
        operation_catalog.register(
            "scanning.assemble_job",
            label="Scanning: assemble a scan job's PDF",
            scope=RunScope.WORKSPACE,
            summary_keys=("batches", "pages", "failed"),
            identity_inputs=("job_id",),
            stale_queued_after=timedelta(minutes=30),
            stale_running_after=timedelta(minutes=30),
        )
        operation_catalog.register(
            "scanning.purge_files",
            label="Scanning: remove committed jobs' scan files past retention",
            scope=RunScope.WORKSPACE,
            summary_keys=("jobs", "files_removed", "files_missing", "bytes_freed", "failed"),
            stale_queued_after=timedelta(hours=1),
            stale_running_after=timedelta(hours=1),
        )
        schedule_registry.register(
            "scanning.check_agent", "scanning.tasks.check_agent_task", minutes=1
        )
        schedule_registry.register(
            "scanning.purge_files", "scanning.tasks.purge_files_task", cron="40 3 * * *"
        )
        if apps.is_installed("automation"):
            # Rules may watch scan jobs; they write none of their fields
            # (every change goes through scanning's services).
            from automation.registry import entity_registry
            from scanning.models import ScanJob

            entity_registry.register(ScanJob, writable_fields=())
