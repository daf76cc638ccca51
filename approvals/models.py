from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from approvals.choices import ActionStatus, FailureStage, KnoxStatus


class KnoxProfile(models.Model):
    """A user's identity in Knox. Requesting an approval needs an EP ID."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="knox_profile"
    )
    ep_id = models.CharField("Knox EP ID", max_length=64, unique=True, null=True, blank=True)

    def __str__(self) -> str:
        return self.ep_id or "(no EP ID)"


class ApprovalTemplate(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    content = models.TextField(help_text="HTML with {{variable}} placeholders.")
    sample_variables = models.JSONField(
        default=dict, blank=True, help_text="Values used for the preview in the admin."
    )
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApprovalLog(models.Model):
    """What we submitted to Knox and what Knox last said about it."""

    ap_inf_id = models.CharField(max_length=32, unique=True)
    # Null until Knox has acknowledged the document.
    knox_status = models.IntegerField(choices=KnoxStatus.choices, null=True, blank=True)
    subject = models.CharField(max_length=500)
    contents = models.TextField(help_text="Exactly as submitted.")
    contents_sha256 = models.CharField(max_length=64)
    approvers = models.JSONField(default=list, help_text="[{ep_id, seq, role}] as submitted.")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="approval_logs"
    )
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="When Knox accepted it.")
    last_checked_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    last_knox_response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.ap_inf_id} {self.subject}"


class PendingAction(models.Model):
    """A business action held until Knox approves it, then executed once."""

    ap_inf_id = models.CharField(max_length=32, unique=True)
    approval_log = models.OneToOneField(
        ApprovalLog, on_delete=models.PROTECT, related_name="pending_action"
    )
    action_type = models.CharField(max_length=100)
    action_payload = models.JSONField()
    status = models.CharField(
        max_length=20, choices=ActionStatus.choices, default=ActionStatus.PENDING
    )
    failure_stage = models.CharField(max_length=10, choices=FailureStage.choices, blank=True)
    execution_result = models.JSONField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="pending_actions",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="pending_action_status"),
            models.Index(fields=["action_type", "status"], name="pending_action_type_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ActionStatus.values), name="pending_action_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status=ActionStatus.EXECUTED) | Q(executed_at__isnull=False),
                name="pending_action_executed_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action_type} {self.ap_inf_id} ({self.status})"


class PendingActionTransition(models.Model):
    """Audit: every status change of a pending action, whoever made it."""

    pending_action = models.ForeignKey(
        PendingAction, on_delete=models.CASCADE, related_name="transitions"
    )
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"
