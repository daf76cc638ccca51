"""Notification deliveries, and where each person's SMS and push go."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from automation.choices import DELIVERY_STATES, DeliveryChannel, DeliveryStatus
from automation.models.rules import AutomationRule, RuleAction
from automation.models.runs import AutomationExecution

USER = settings.AUTH_USER_MODEL


class NotificationDelivery(models.Model):
    notification_id = models.UUIDField(default=uuid.uuid4, editable=False)
    execution = models.ForeignKey(
        AutomationExecution,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deliveries",
    )
    rule = models.ForeignKey(
        AutomationRule, null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries"
    )
    action = models.ForeignKey(
        RuleAction, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    # A user id (email, sms, push, in_app) or the webhook's URL without credentials.
    recipient = models.CharField(max_length=500)
    recipient_user = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=50, choices=DeliveryChannel.choices)
    status = models.CharField(
        max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    payload = models.JSONField(default=dict)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Attempts whose worker died before recording an outcome (lease expired):
    # each is given back and sent again, up to AUTOMATION_DELIVERY_MAX_ABANDONED.
    abandoned_attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    provider_response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(
        auto_now_add=True, db_column="created_date", verbose_name="created date"
    )
    updated_at = models.DateTimeField(
        auto_now=True, db_column="updated_date", verbose_name="updated date"
    )

    state_machine = DELIVERY_STATES

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "notification deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            # Lists read newest first: this index is that order (issue 11).
            models.Index(fields=["-created_at", "-id"], name="delivery_newest"),
            models.Index(
                fields=["recipient_user", "-created_at", "-id"], name="delivery_recipient_newest"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "action", "channel", "recipient"],
                name="uniq_delivery_per_recipient_channel",
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} {self.channel} → {self.recipient} ({self.status})"


class NotificationProfile(models.Model):
    """Where a person's SMS and push notifications go. Optional: a recipient
    without a number (or token) gets a failed delivery saying so."""

    user = models.OneToOneField(USER, on_delete=models.CASCADE, related_name="notification_profile")
    phone_number = models.CharField(
        max_length=16,
        blank=True,
        validators=[
            RegexValidator(
                r"^\+[1-9][0-9]{6,14}$",
                "Give the number in international form: + then 7 to 15 digits, e.g. +821012345678.",
            )
        ],
        help_text="For SMS, in international form (E.164), e.g. +821012345678.",
    )
    push_token = models.CharField(
        max_length=4096, blank=True, help_text="The device's push registration token."
    )
    updated_at = models.DateTimeField(
        auto_now=True, db_column="updated_date", verbose_name="updated date"
    )

    class Meta:
        ordering = ["user_id"]

    def __str__(self) -> str:
        return f"notification profile of {self.user}"
