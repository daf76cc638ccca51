from datetime import timedelta

from django.apps import AppConfig, apps


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals.services import deadlines, poll
        from operations.catalog import operation_catalog
        from operations.choices import RunScope
        from operations.schedules import schedule_registry

        operation_catalog.register(
            "approvals.poll_knox",
            label="Poll Knox for approval decisions",
            scope=RunScope.WORKSPACE,
            summary_keys=poll.COUNT_KEYS,
            stale_queued_after=timedelta(minutes=3),
            stale_running_after=timedelta(minutes=3),
        )
        schedule_registry.register("approvals.poll_knox", "approvals.tasks.poll_knox", minutes=1)
        # Issue 13: reminders before a decision deadline, expiry or escalation after it.
        operation_catalog.register(
            "approvals.sweep_deadlines",
            label="Approval deadlines: reminders, expiry, escalation",
            scope=RunScope.WORKSPACE,
            summary_keys=deadlines.COUNT_KEYS,
            stale_queued_after=timedelta(minutes=3),
            stale_running_after=timedelta(minutes=10),
        )
        schedule_registry.register(
            "approvals.sweep_deadlines", "approvals.tasks.sweep_deadlines", minutes=1
        )
        if apps.is_installed("automation"):
            from approvals.automation_actions import SeekApprovalAction
            from approvals.models import PendingAction
            from automation.actions import action_registry
            from automation.registry import entity_registry

            action_registry.register(SeekApprovalAction())
            # Rules may watch pending actions; they write none of their fields
            # (every change goes through approvals' services).
            entity_registry.register(PendingAction, writable_fields=())
