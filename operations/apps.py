from datetime import timedelta

from django.apps import AppConfig, apps


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        from operations.catalog import operation_catalog
        from operations.choices import RunScope
        from operations.schedules import schedule_registry

        operation_catalog.register(
            "ops.reconcile_runs",
            label="Reconcile stale runs",
            scope=RunScope.WORKSPACE,
            summary_keys=("checked", "reconciled", "skipped"),
            stale_queued_after=timedelta(minutes=15),
            stale_running_after=timedelta(minutes=15),
        )
        # Only seed_demo records runs of this type, so that a new operator sees
        # a tenant-scoped run in the console; no schedule runs it.
        operation_catalog.register(
            "demo.tenant_sync",
            label="Demo: tenant sync (seed data)",
            scope=RunScope.TENANT,
            summary_keys=("fetched", "updated", "failed"),
            identity_inputs=("source",),
        )
        # seed_demo's record that it created the demo rows: it never creates them again.
        operation_catalog.register(
            "demo.seed",
            label="Demo: seed data created",
            scope=RunScope.WORKSPACE,
            summary_keys=("tenants", "runs"),
        )
        schedule_registry.register(
            "ops.reconcile_runs", "operations.tasks.reconcile_runs_task", minutes=5
        )
        if apps.is_installed("approvals"):
            from operations.approval_handlers import register

            register()
        if apps.is_installed("automation"):
            # Rules may watch tenants and workspaces and rename them.
            from automation.registry import entity_registry
            from operations.models import Tenant, Workspace

            entity_registry.register(Tenant, writable_fields=("name",))
            entity_registry.register(Workspace, writable_fields=("name",))
