"""Alerts: read-only, with their recipients, acknowledgements and status
history; operators acknowledge or dismiss them for everyone."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from automation.choices import AlertStatus
from automation.models import (
    Alert,
    AlertAcknowledgement,
    AlertRecipient,
    AlertStatusChange,
)
from automation.services import (
    alert_set_status_by_operator,
)
from config.admin_actions import ObjectAction, ObjectActionsMixin
from config.admin_display import admin_link, badge_column, in_state_for, model_named
from config.errors import ApplicationError, Forbidden
from config.observability.attention import AttentionListFilter
from operations.admin import pretty_json


class RecipientInline(admin.TabularInline):
    model = AlertRecipient
    extra = 0
    fields = ["recipient_type", "user", "group", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AcknowledgementInline(RecipientInline):
    model = AlertAcknowledgement
    fields = ["acknowledged_by", "kind", "acknowledged_date", "notes"]
    readonly_fields = fields


class StatusChangeInline(RecipientInline):
    """Who or what moved the alert as a whole, and why."""

    model = AlertStatusChange
    fields = ["created_at", "from_status", "to_status", "actor_name", "reason"]
    readonly_fields = fields
    verbose_name_plural = "status history"


@admin.register(Alert)
class AlertAdmin(ObjectActionsMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "title",
        badge_column("severity"),
        badge_column("status"),
        in_state_for,
        "alert_type",
        "source",
        "created_at",
    ]
    list_filter = [AttentionListFilter, "status", "severity", "alert_type"]
    search_fields = ["=id", "title", "alert_type", "source_entity_id"]
    inlines = [RecipientInline, AcknowledgementInline, StatusChangeInline]
    actions = ["acknowledge", "dismiss"]
    object_actions = (
        ObjectAction(
            "acknowledge",
            "Acknowledge",
            available=lambda alert: alert.status == AlertStatus.ACTIVE,
        ),
        ObjectAction(
            "dismiss",
            "Dismiss",
            available=lambda alert: alert.status in (AlertStatus.ACTIVE, AlertStatus.ACKNOWLEDGED),
        ),
    )
    fields = [
        "alert_type",
        "severity",
        "title",
        "message",
        "status",
        "source",
        "source_rule",
        "source_execution",
        "expires_date",
        "created_at",
        "updated_at",
        "context_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="source", ordering="source_entity_name")
    def source(self, alert):
        """The entity and row the alert is about, linked to that row's page
        when its model is in the console."""
        if not alert.source_entity_name:
            return "—"
        row = admin_link(
            model_named(alert.source_entity_name), alert.source_entity_id, site=self.admin_site
        )
        return format_html("{} {}", alert.source_entity_name, row)

    @admin.display(description="context")
    def context_pretty(self, alert):
        return pretty_json(alert.context)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def do_acknowledge(self, request, alert):
        alert_set_status_by_operator(
            alert=alert, status=AlertStatus.ACKNOWLEDGED, actor=request.user
        )
        return f"Alert {alert.pk} acknowledged."

    def do_dismiss(self, request, alert):
        alert_set_status_by_operator(alert=alert, status=AlertStatus.DISMISSED, actor=request.user)
        return f"Alert {alert.pk} dismissed."

    def _bulk(self, request, queryset, status):
        done = 0
        for alert in queryset.order_by("pk"):
            try:
                alert_set_status_by_operator(alert=alert, status=status, actor=request.user)
            except Forbidden as refused:
                self.message_user(request, refused.message, messages.ERROR)
                return
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} alert(s) {status}.", messages.SUCCESS)

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge(self, request, queryset):
        self._bulk(request, queryset, AlertStatus.ACKNOWLEDGED)

    @admin.action(description="Dismiss selected alerts")
    def dismiss(self, request, queryset):
        self._bulk(request, queryset, AlertStatus.DISMISSED)
