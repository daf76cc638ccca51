from __future__ import annotations

from django.db.models import QuerySet

from operations.choices import TENANT_CREATOR_ROLES
from operations.models import OperationRun, Workspace


def workspaces_visible_to(user) -> QuerySet[Workspace]:
    if user.is_superuser:
        return Workspace.objects.all()
    return Workspace.objects.filter(memberships__user=user)


def workspaces_where_user_may_create_tenants(user) -> QuerySet[Workspace]:
    """Operators and admins of a workspace may create tenants in it, superusers
    in any; an inactive (or deleted, None) user nowhere."""
    if user is None or not user.is_active:
        return Workspace.objects.none()
    if user.is_superuser:
        return Workspace.objects.all()
    return Workspace.objects.filter(
        memberships__user=user, memberships__role__in=TENANT_CREATOR_ROLES
    )


def operation_runs_visible_to(user) -> QuerySet[OperationRun]:
    """Runs in the workspaces ``user`` belongs to; every run for superusers."""
    runs = OperationRun.objects.select_related("workspace", "tenant", "user")
    if user.is_superuser:
        return runs
    return runs.filter(workspace__memberships__user=user)
