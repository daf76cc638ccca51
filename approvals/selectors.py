from __future__ import annotations

from datetime import datetime

from django.db.models import F, Q, QuerySet

from approvals.choices import IN_FLIGHT, ActionStatus
from approvals.models import ApprovalTemplate, KnoxProfile, PendingAction


def pending_actions_visible_to(user) -> QuerySet[PendingAction]:
    """Your own requests; every request for staff."""
    actions = PendingAction.objects.select_related("approval_log", "created_by").prefetch_related(
        "transitions"
    )
    return actions if user.is_staff else actions.filter(created_by=user)


def may_see_pending_action(user, pending_action: PendingAction) -> bool:
    """The row-level form of ``pending_actions_visible_to``."""
    return user.is_staff or pending_action.created_by_id == user.pk


def active_templates() -> QuerySet[ApprovalTemplate]:
    return ApprovalTemplate.objects.filter(is_active=True).order_by("name")


def pending_actions_in_flight(*, created_before: datetime) -> list:
    """The documents the poll asks Knox about, as rows with ``pk``,
    ``ap_inf_id``, ``status``, ``knox_status`` and ``submitted_at`` (what Knox
    last said): every pending or submit-unknown action, except a pending one
    never submitted and created after ``created_before`` (its submit is still
    under way and has not heard from Knox yet)."""
    submitting = Q(
        status=ActionStatus.PENDING,
        approval_log__submitted_at__isnull=True,
        created_at__gte=created_before,
    )
    return list(
        PendingAction.objects.filter(status__in=IN_FLIGHT)
        .exclude(submitting)
        .annotate(
            knox_status=F("approval_log__knox_status"),
            submitted_at=F("approval_log__submitted_at"),
        )
        .values_list("pk", "ap_inf_id", "status", "knox_status", "submitted_at", named=True)
    )


def ep_id_of(user) -> str | None:
    """The user's Knox EP ID, or None."""
    return KnoxProfile.objects.filter(user=user).values_list("ep_id", flat=True).first() or None
