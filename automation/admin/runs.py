"""Outbox events (with a replay action) and rule executions, read-only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from automation.admin.base import ReadOnlyAdmin
from automation.admin.versions import version_link
from automation.engine import event_replay
from automation.models import (
    AutomationEvent,
    AutomationExecution,
)
from config.errors import ApplicationError, Forbidden
from operations.admin import counts_in_words, pretty_json
from operations.sanitize import sanitize_message


@admin.register(AutomationEvent)
class AutomationEventAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "entity",
        "trigger",
        "object_pk",
        "status",
        "depth",
        "attempts",
        "created_at",
    ]
    list_filter = ["status", "trigger", "entity"]
    search_fields = ["=id", "object_pk"]
    actions = ["replay"]
    fields = [
        "id",
        "entity",
        "trigger",
        "object_pk",
        "status",
        "depth",
        "caused_by",
        "attempts",
        "note",
        "created_at",
        "processed_at",
        "changed_fields_pretty",
        "new_pretty",
        "old_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="changed fields")
    def changed_fields_pretty(self, event):
        return pretty_json(event.changed_fields)

    @admin.display(description="new values")
    def new_pretty(self, event):
        return pretty_json(event.new_values)

    @admin.display(description="old values")
    def old_pretty(self, event):
        return pretty_json(event.old_values)

    @admin.action(description="Replay selected events")
    def replay(self, request, queryset):
        for event in queryset.order_by("pk"):
            try:
                counts = event_replay(event.pk, actor=request.user)
            except Forbidden as refused:
                self.message_user(request, refused.message, messages.ERROR)
                return
            except ApplicationError as error:
                self.message_user(request, f"Event {event.pk}: {error.message}", messages.ERROR)
            except ValidationError as error:
                self.message_user(
                    request, f"Event {event.pk}: {' '.join(error.messages)}", messages.ERROR
                )
            except (LookupError, ValueError) as error:
                self.message_user(
                    request,
                    f"Event {event.pk} cannot be replayed: {sanitize_message(str(error))}",
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request, f"Event {event.pk} replayed: {counts_in_words(counts)}.", messages.INFO
                )


@admin.register(AutomationExecution)
class AutomationExecutionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "rule",
        "rule_version",
        "status",
        "entity_type",
        "object_pk",
        "execution_time_ms",
        "executed_at",
    ]
    list_filter = ["status", "rule"]
    search_fields = ["=id", "object_pk", "rule__name"]
    list_select_related = ["rule"]
    fields = [
        "id",
        "rule",
        "version_link",
        "event",
        "schedule_slot",
        "entity_type",
        "object_pk",
        "status",
        "error_message",
        "execution_time_ms",
        "depth",
        "executed_at",
        "actions_pretty",
        "trigger_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="rule version")
    def version_link(self, execution):
        return version_link(execution.rule_id, execution.rule_version)

    @admin.display(description="actions executed")
    def actions_pretty(self, execution):
        return pretty_json(execution.actions_executed)

    @admin.display(description="trigger data")
    def trigger_pretty(self, execution):
        return pretty_json(execution.trigger_data)
