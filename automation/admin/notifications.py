"""Notification deliveries (read-only, with a retry action) and where each
person's SMS and push go."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from automation.admin.base import ReadOnlyAdmin
from automation.choices import DeliveryStatus
from automation.models import (
    NotificationDelivery,
    NotificationProfile,
)
from automation.services import (
    delivery_retry,
)
from config.admin_actions import ActionFailed, ObjectAction, ObjectActionsMixin
from config.admin_display import badge_column, in_state_for
from config.errors import ApplicationError, Forbidden
from config.observability.attention import AttentionListFilter
from operations.admin import pretty_json


@admin.register(NotificationProfile)
class NotificationProfileAdmin(admin.ModelAdmin):
    """Where each person's SMS and push notifications go."""

    list_display = ["user", "phone_number", "has_push_token", "updated_at"]
    search_fields = ["user__username", "user__email", "phone_number"]
    autocomplete_fields = ["user"]
    fields = ["user", "phone_number", "push_token", "updated_at"]
    readonly_fields = ["updated_at"]

    @admin.display(boolean=True, description="push token")
    def has_push_token(self, profile):
        return bool(profile.push_token)


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ObjectActionsMixin, ReadOnlyAdmin):
    list_display = [
        "id",
        "channel",
        "recipient_link",
        badge_column("status"),
        in_state_for,
        "attempts_of_max",
        "next_attempt_at",
        "updated_at",
    ]
    list_filter = [AttentionListFilter, "status", "channel"]
    search_fields = ["=id", "recipient", "=notification_id"]
    actions = ["retry"]
    object_actions = (
        ObjectAction(
            "retry",
            "Retry now",
            available=lambda delivery: (
                delivery.status not in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
            ),
        ),
    )
    fields = [
        "id",
        "notification_id",
        "execution",
        "rule",
        "action",
        "channel",
        "recipient",
        "status",
        "attempts",
        "max_attempts",
        "next_attempt_at",
        "sent_at",
        "delivered_at",
        "failed_at",
        "error_message",
        "provider_pretty",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    @admin.display(description="attempts", ordering="attempts")
    def attempts_of_max(self, delivery):
        # One column for two numbers: the list fits 1400 px (tests/console/test_list_widths.py).
        return f"{delivery.attempts} of {delivery.max_attempts}"

    @admin.display(description="recipient", ordering="recipient")
    def recipient_link(self, delivery):
        """The person's admin page when the recipient is a user."""
        if delivery.recipient_user_id is None:
            return delivery.recipient
        url = reverse("admin:auth_user_change", args=[delivery.recipient_user_id])
        return format_html('<a href="{}">{}</a>', url, delivery.recipient)

    @admin.display(description="provider response")
    def provider_pretty(self, delivery):
        return pretty_json(delivery.provider_response)

    def do_retry(self, request, delivery):
        result = delivery_retry(delivery_id=delivery.pk, actor=request.user)
        line = f"Delivery {result.pk}: {result.get_status_display().lower()}."
        if result.status in (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED):
            raise ActionFailed(f"{line} {result.error_message}".strip())
        return line

    @admin.action(description="Retry selected deliveries now")
    def retry(self, request, queryset):
        for delivery in queryset.order_by("pk"):
            try:
                result = delivery_retry(delivery_id=delivery.pk, actor=request.user)
            except Forbidden as refused:
                self.message_user(request, refused.message, messages.ERROR)
                return
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                failed = result.status in (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED)
                self.message_user(
                    request,
                    f"Delivery {result.pk}: {result.status}.",
                    messages.ERROR if failed else messages.SUCCESS,
                )
