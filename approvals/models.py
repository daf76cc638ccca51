from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from approvals.choices import (
    PENDING_ACTION_STATES,
    ActionStatus,
    ApproverRole,
    DeadlinePolicy,
    FailureStage,
    KnoxStatus,
)
from approvals.deadlines import DURATION_HELP, template_deadline_problems
from approvals.templating import template_problems

EP_ID_MAX = 64


class KnoxProfile(models.Model):
    """A user's identity in Knox. Requesting an approval needs an EP ID."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="knox_profile"
    )
    ep_id = models.CharField("Knox EP ID", max_length=EP_ID_MAX, unique=True, null=True, blank=True)

    def __str__(self) -> str:
        return self.ep_id or "(no EP ID)"


class ApprovalTemplate(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    content = models.TextField(help_text="HTML with {{variable}} placeholders.")
    sample_variables = models.JSONField(
        default=dict, blank=True, help_text="Values used for the preview in the admin."
    )
    default_approvers = models.JSONField(
        "default approval line",
        default=list,
        blank=True,
        help_text='Used when a request names no approvers: [{"ep_id": "EP-1", "role": 1}, …] '
        "in approval order; roles: "
        + ", ".join(
            f"{r.value} {r.label.lower()}" for r in ApproverRole if r != ApproverRole.DRAFTER
        )
        + ".",
    )
    is_active = models.BooleanField(default=True)
    # Deadlines (issue 13): how long Knox has to decide, reminders before that,
    # and what happens when the time is up. A request may give its own deadline.
    decision_deadline = models.CharField(
        max_length=20,
        blank=True,
        help_text=f"How long Knox has to decide, from the request: {DURATION_HELP}. "
        "Empty: no deadline.",
    )
    reminders_before = models.CharField(
        "reminders before the deadline",
        max_length=200,
        blank=True,
        help_text='Comma-separated durations before the deadline, e.g. "1d, 2h": each sends '
        "one reminder to the requester and the reminder recipients.",
    )
    reminder_recipients = models.JSONField(
        default=dict,
        blank=True,
        help_text='Who else is reminded (the requester always is): {"users": [id or username, '
        '…], "roles": [group name, …]}.',
    )
    reminder_channels = models.CharField(
        max_length=100,
        default="in_app",
        blank=True,
        help_text="Comma-separated notification channels for reminders: in_app, email, sms, push.",
    )
    deadline_policy = models.CharField(
        max_length=10,
        choices=DeadlinePolicy.choices,
        default=DeadlinePolicy.WITHDRAW,
        blank=True,  # blank reads as withdraw: forms written before issue 13 still save
        help_text="When the deadline passes undecided: expire the action and withdraw the "
        "document at Knox, or alert the escalation recipients and keep waiting.",
    )
    escalation_recipients = models.JSONField(
        default=dict,
        blank=True,
        help_text='Who is alerted when the policy is escalate: {"users": […], "roles": […]}.',
    )
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

    def clean(self) -> None:
        """Refuse placeholders that would reach Knox as literal text, and a
        malformed default approval line."""
        errors = {}
        problems = template_problems(self.content or "")
        if problems:
            errors["content"] = problems
        problems = approval_line_problems(self.default_approvers)
        if problems:
            errors["default_approvers"] = problems
        errors.update(
            template_deadline_problems(
                deadline=self.decision_deadline,
                reminders=self.reminders_before,
                reminder_recipients=self.reminder_recipients,
                reminder_channels=self.reminder_channels,
                policy=self.deadline_policy,
                escalation_recipients=self.escalation_recipients,
            )
        )
        if errors:
            raise ValidationError(errors)


def approval_line_problems(line) -> list[str]:
    """What is wrong with an approval line ``[{"ep_id", "role"}, …]``."""
    if not isinstance(line, list):
        return ['A list of {"ep_id": …, "role": …} objects, in approval order.']
    roles = [r.value for r in ApproverRole if r != ApproverRole.DRAFTER]
    problems, seen = [], set()
    for position, entry in enumerate(line, 1):
        if not isinstance(entry, dict) or set(entry) != {"ep_id", "role"}:
            problems.append(f'Approver {position}: an object with "ep_id" and "role" only.')
            continue
        ep_id, role = entry["ep_id"], entry["role"]
        if (
            not isinstance(ep_id, str)
            or not ep_id
            or ep_id != ep_id.strip()
            or len(ep_id) > EP_ID_MAX
        ):
            problems.append(
                f"Approver {position}: an EP ID of 1 to {EP_ID_MAX} characters, no surrounding spaces."
            )
        elif ep_id in seen:
            problems.append(f"Approver {position}: {ep_id} is listed twice.")
        seen.add(ep_id)
        if isinstance(role, bool) or role not in roles:
            problems.append(
                f"Approver {position}: role is one of {', '.join(map(str, roles))} "
                "(0, the drafter, is the requester)."
            )
    return problems


class ApprovalLog(models.Model):
    """What we submitted to Knox and what Knox last said about it."""

    ap_inf_id = models.CharField(max_length=32, unique=True)
    # Null until Knox has acknowledged the document.
    knox_status = models.IntegerField(choices=KnoxStatus.choices, null=True, blank=True)
    subject = models.CharField(max_length=500)
    contents = models.TextField(help_text="Exactly as submitted.")
    contents_sha256 = models.CharField(max_length=64)
    payload_sha256 = models.CharField(
        max_length=64, help_text="sha256 of the canonical JSON of the payload as requested."
    )
    approvers = models.JSONField(default=list, help_text="[{ep_id, seq, role}] as submitted.")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="approval_logs"
    )
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="When Knox accepted it.")
    last_checked_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When Bureau last asked Knox about it: written when Knox's answer changes, "
        "else renewed once older than KNOX_CHECK_STAMP_SECONDS (10 minutes by default). "
        "Older than that: the document is not being polled.",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # Knox status 5 (전결): who decided by delegation, when Knox names them.
    delegate_ep_id = models.CharField("delegate's EP ID", max_length=EP_ID_MAX, blank=True)
    last_knox_response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.ap_inf_id} {self.subject}"


class PendingAction(models.Model):
    """A business action held until Knox approves it, then executed once. Its
    status changes only through ``config.transitions`` (moves: ``choices.py``)."""

    state_machine = PENDING_ACTION_STATES

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
    # A stable dotted code for the failure (approvals.not_authorized, knox.unavailable, …).
    failure_code = models.CharField(max_length=100, blank=True)
    execution_result = models.JSONField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="pending_actions",
    )
    # Deadline (issue 13). The template names who is reminded and escalated to
    # (read when the time comes); the due time and the policy are fixed at the request.
    template = models.ForeignKey(
        ApprovalTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    due_at = models.DateTimeField(
        null=True, blank=True, help_text="Knox's decision is due by then (None: no deadline)."
    )
    deadline_policy = models.CharField(max_length=10, choices=DeadlinePolicy.choices, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_alert_id = models.BigIntegerField(null=True, blank=True)
    # An expired document is withdrawn at Knox after the move (saga order): until
    # Knox confirms, each deadline sweep tries again, the last error kept here.
    knox_withdrawn_at = models.DateTimeField(null=True, blank=True)
    knox_withdraw_attempts = models.PositiveIntegerField(default=0)
    knox_withdraw_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            (
                "operate_pendingaction",
                "Can check, withdraw, retry and resubmit anyone's pending actions",
            )
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="pending_action_status"),
            models.Index(fields=["action_type", "status"], name="pending_action_type_status"),
            # Lists read newest first: this index is that order (issue 11).
            models.Index(fields=["-created_at", "-id"], name="pending_action_newest"),
            models.Index(
                fields=["created_by", "-created_at", "-id"], name="pending_action_mine_newest"
            ),
            # "Due within" / "overdue" and the deadline sweep (issue 13).
            models.Index(fields=["status", "due_at"], name="pending_action_status_due"),
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


class PendingActionReminder(models.Model):
    """One reminder of a pending action's deadline: due at ``remind_at``, sent
    once (``sent_at`` and what was sent are recorded in the same transaction
    as the notifications are written)."""

    pending_action = models.ForeignKey(
        PendingAction, on_delete=models.CASCADE, related_name="reminders"
    )
    before_deadline = models.DurationField()
    remind_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivery_ids = models.JSONField(default=list, blank=True)
    recipients = models.JSONField(
        default=list, blank=True, help_text="Usernames the reminder went to."
    )

    class Meta:
        ordering = ["remind_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["pending_action", "before_deadline"], name="uniq_reminder_per_offset"
            ),
        ]
        indexes = [
            models.Index(
                fields=["remind_at"], name="reminder_unsent_due", condition=Q(sent_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"reminder of {self.pending_action_id} at {self.remind_at:%Y-%m-%d %H:%M}"


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
