from django.db.models import QuerySet

from approvals.models import ApprovalTemplate, PendingAction


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
