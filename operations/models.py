from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from operations.choices import ACTIVE_STATUSES, RUN_STATES, MemberRole, RunOutcome, RunStatus


class Workspace(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="WorkspaceMembership", related_name="workspaces"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WorkspaceMembership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspace_memberships"
    )
    role = models.CharField(max_length=20, choices=MemberRole.choices, default=MemberRole.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "user"], name="uniq_membership_workspace_user"
            ),
            models.CheckConstraint(
                condition=Q(role__in=MemberRole.values), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"


class Tenant(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="tenants")
    name = models.CharField(max_length=200)
    # A UUID v4 string for other systems to refer to the tenant by, set on create.
    external_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name"], name="uniq_tenant_workspace_name"
            ),
        ]
        # Scheduled rules filter on it ("older_than": "30d") in the database.
        indexes = [models.Index(fields=["created_at"], name="tenant_created_at")]

    def __str__(self) -> str:
        return self.name


class OperationRun(models.Model):
    """One background operation: the ledger row every scheduled job writes."""

    state_machine = RUN_STATES

    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, related_name="operation_runs"
    )
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="operation_runs"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="operation_runs",
    )
    initiator_name = models.CharField(max_length=150, blank=True)
    type = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    outcome = models.CharField(
        max_length=30, choices=RunOutcome.choices, default=RunOutcome.PENDING
    )
    run_identity_hash = models.CharField(max_length=64)
    summary_counts = models.JSONField(default=dict, blank=True)
    failure_summary = models.JSONField(default=list, blank=True)
    context = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Renewed by the worker while the run is running (its lease); a run whose
    # heartbeat is older than its type's lease lost its worker and is taken over.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("reconcile_runs", "Can reconcile stale operation runs")]
        indexes = [
            models.Index(fields=["type", "status"], name="oprun_type_status"),
            models.Index(fields=["workspace", "-created_at"], name="oprun_workspace_created"),
            models.Index(fields=["status", "created_at"], name="oprun_status_created"),
            # Lists read newest first: this index is that order (issue 11).
            models.Index(fields=["-created_at", "-id"], name="oprun_newest"),
        ]
        constraints = [
            # Active-run dedupe lives in the database, so two processes racing to
            # start the same operation cannot both succeed.
            models.UniqueConstraint(
                fields=["tenant", "run_identity_hash"],
                condition=Q(status__in=ACTIVE_STATUSES, tenant__isnull=False),
                name="uniq_active_run_per_tenant",
            ),
            models.UniqueConstraint(
                fields=["workspace", "run_identity_hash"],
                condition=Q(status__in=ACTIVE_STATUSES, tenant__isnull=True),
                name="uniq_active_run_per_workspace",
            ),
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="oprun_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(outcome__in=RunOutcome.values), name="oprun_outcome_valid"
            ),
            # A completed run has a final outcome; an active one does not yet.
            models.CheckConstraint(
                condition=(
                    Q(status=RunStatus.COMPLETED, completed_at__isnull=False)
                    & ~Q(outcome=RunOutcome.PENDING)
                )
                | (~Q(status=RunStatus.COMPLETED) & Q(outcome=RunOutcome.PENDING)),
                name="oprun_outcome_matches_status",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk} ({self.status}/{self.outcome})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration(self):
        if self.started_at and self.completed_at:
            return self.completed_at - self.started_at
        return None
