from datetime import timedelta

from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_delete, post_migrate, post_save


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = "Automation"

    def ready(self) -> None:
        from automation.actions import action_registry
        from automation.actions.alerts import CreateAlertAction
        from automation.actions.fields import UpdateFieldAction
        from automation.actions.notifications import SendNotificationAction
        from automation.checks import (
            check_inbound_secrets,
            check_notification_backends,
            check_webhook_secrets,
        )
        from automation.entities import invalidate_watch_index, registered_models
        from automation.events import connect_signals
        from automation.models import AutomationRule, Entity
        from automation.registry import entity_registry
        from config.transitions import watch_saves
        from operations.catalog import operation_catalog
        from operations.choices import RunScope
        from operations.schedules import schedule_registry

        for action_type in (CreateAlertAction(), SendNotificationAction(), UpdateFieldAction()):
            action_registry.register(action_type)
        checks.register(check_webhook_secrets)
        checks.register(check_notification_backends)
        checks.register(check_inbound_secrets)

        # The apps register their own models (automation.registry), before or
        # after this runs: each is watched from its registration on.
        entity_registry.subscribe(lambda model: connect_signals([model]))
        # A state-change batch writes rows in bulk unless a rule watches their updates.
        watch_saves(_updates_watched)
        # The extra models of AUTOMATION_ENTITIES that exist; the others are
        # skipped here, and automation_sync_entities reports them.
        models, _missing = registered_models()
        connect_signals(models.values())
        for model in (AutomationRule, Entity):
            post_save.connect(
                invalidate_watch_index,
                sender=model,
                dispatch_uid=f"automation:watch:{model.__name__}:save",
            )
            post_delete.connect(
                invalidate_watch_index,
                sender=model,
                dispatch_uid=f"automation:watch:{model.__name__}:delete",
            )
        post_migrate.connect(
            _sync_after_migrate, sender=self, dispatch_uid="automation:entities_sync"
        )

        operation_catalog.register(
            "automation.scheduled_rules",
            label="Automation: scheduled rules",
            scope=RunScope.WORKSPACE,
            summary_keys=(
                "rules_due",
                "rules_run",
                "rows_checked",
                "rows_matched",
                "executions",
                "failed",
                "rules_failed",
            ),
            stale_running_after=timedelta(minutes=30),
        )
        operation_catalog.register(
            "automation.drain_outbox",
            label="Automation: drain the event outbox",
            scope=RunScope.WORKSPACE,
            summary_keys=(
                "events",
                "events_failed",
                "matched",
                "executions",
                "failed",
                "skipped",
                "duplicates",
                "helpers",
            ),
            stale_running_after=timedelta(minutes=30),
        )
        operation_catalog.register(
            "automation.retry_deliveries",
            label="Automation: send and retry notification deliveries",
            scope=RunScope.WORKSPACE,
            summary_keys=(
                "attempted",
                "delivered",
                "sent",
                "retrying",
                "failed",
                "bounced",
                "skipped",
                "queued",
                "released",
                "abandoned_failed",
            ),
            stale_running_after=timedelta(minutes=30),
        )
        operation_catalog.register(
            "automation.expire_alerts",
            label="Automation: expire alerts past their date",
            scope=RunScope.WORKSPACE,
            summary_keys=("expired",),
            stale_running_after=timedelta(minutes=10),
        )
        schedule_registry.register(
            "automation.scheduled_rules", "automation.tasks.scheduled_rules_task", minutes=1
        )
        schedule_registry.register(
            "automation.expire_alerts", "automation.tasks.expire_alerts_task", minutes=5
        )
        schedule_registry.register(
            "automation.drain_outbox", "automation.tasks.drain_outbox_task", minutes=1
        )
        schedule_registry.register(
            "automation.retry_deliveries", "automation.tasks.retry_deliveries_task", minutes=1
        )


def _sync_after_migrate(**kwargs) -> None:
    """Trigger types, entity types and Bureau's entities exist as soon as the
    tables do, so an operator can write a rule right after ``migrate``."""
    from automation.entities import entities_sync

    entities_sync()


def _updates_watched(model) -> bool:
    """Whether an active rule watches updates of ``model`` (the watch index
    the signals read: the same answer, the same cache)."""
    from automation.choices import Trigger
    from automation.entities import watch_index

    return watch_index.entity_for(model._meta.label, Trigger.ON_UPDATE) is not None
