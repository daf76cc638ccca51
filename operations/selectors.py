from __future__ import annotations

from django.db.models import QuerySet

from operations.models import OperationRun, Workspace


def workspaces_visible_to(user) -> QuerySet[Workspace]:
    if user.is_superuser:
        return Workspace.objects.all()
    return Workspace.objects.filter(memberships__user=user)


def operation_runs_visible_to(user) -> QuerySet[OperationRun]:
    """Runs in the workspaces ``user`` belongs to; every run for superusers."""
    runs = OperationRun.objects.select_related("workspace", "tenant", "user")
    if user.is_superuser:
        return runs
    return runs.filter(workspace__memberships__user=user)
