"""Reads of the approvals app: what a user may see, the templates a request
may use, the documents the poll asks Knox about. Selectors import no service."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db.models import BooleanField, ExpressionWrapper, F, Prefetch, Q, QuerySet
from django.db.models.functions import Now
from django.utils import timezone

from approvals.choices import IN_FLIGHT, ActionStatus
from approvals.models import ApprovalTemplate, KnoxProfile, PendingAction
from config.errors import Forbidden


def pending_action_list(*, user) -> QuerySet[PendingAction]:
    """Your own requests; every request for staff."""
    # Prefetched into lists (``to_attr``): a page of 50 costs no related
    # manager and queryset per row (bench/scale_bench.py, the lists).
    # The approval log's submitted contents (the rendered template, kilobytes),
    # approval line and last raw Knox answer are not part of the API's view.
    actions = (
        PendingAction.objects.select_related("approval_log", "created_by")
        .defer(
            "approval_log__contents",
            "approval_log__approvers",
            "approval_log__last_knox_response",
        )
        .prefetch_related(
            Prefetch("transitions", to_attr="transition_list"),
            Prefetch("reminders", to_attr="reminder_list"),
        )
    )
    return actions if user.is_staff else actions.filter(created_by=user)


def pending_action_is_visible(*, user, pending_action: PendingAction) -> bool:
    """The row-level form of ``pending_action_list``."""
    return user.is_staff or pending_action.created_by_id == user.pk


def approval_template_list_active() -> QuerySet[ApprovalTemplate]:
    """The templates a request may use."""
    return ApprovalTemplate.objects.filter(is_active=True).order_by("name")


def pending_action_pages_in_flight(
    *, created_before: datetime, size: int = 1000, stamped_before: datetime | None = None
) -> Iterator[list]:
    """The documents the poll asks Knox about, a page of at most ``size`` rows
    at a time in primary-key order (a keyset: each page starts after the last
    one's key, so memory stays one page whatever is in flight), as rows with
    ``pk``, ``ap_inf_id``, ``status``, ``approval_log_id``, ``knox_status``,
    ``submitted`` (what Knox last said) and ``stamp_due`` (its last check was
    never stamped, or before ``stamped_before``, or ever when that is None): every pending or
    submit-unknown action, except a pending one never submitted and created
    after ``created_before`` (its submit is still under way and has not heard
    from Knox yet)."""
    submitting = Q(
        status=ActionStatus.PENDING,
        approval_log__submitted_at__isnull=True,
        created_at__gte=created_before,
    )
    rows = (
        PendingAction.objects.filter(status__in=IN_FLIGHT)
        .exclude(submitting)
        .annotate(
            knox_status=F("approval_log__knox_status"),
            # Whether it was submitted, not when: no datetime to parse a row.
            submitted=ExpressionWrapper(
                Q(approval_log__submitted_at__isnull=False), output_field=BooleanField()
            ),
            stamp_due=ExpressionWrapper(
                Q(approval_log__last_checked_at__isnull=True)
                | Q(approval_log__last_checked_at__lt=stamped_before or Now()),
                output_field=BooleanField(),
            ),
        )
        .order_by("pk")
        .values_list(
            "pk",
            "ap_inf_id",
            "status",
            "approval_log_id",
            "knox_status",
            "submitted",
            "stamp_due",
            named=True,
        )
    )
    after = 0
    while True:
        page = list(rows.filter(pk__gt=after)[:size])
        if page:
            yield page
        if len(page) < size:
            return
        after = page[-1].pk


def pending_actions_due_within(
    actions: QuerySet[PendingAction], *, within: timedelta, now: datetime | None = None
) -> QuerySet[PendingAction]:
    """Still waiting for Knox, and due from now to ``within`` from now (not
    overdue yet): one indexed range on (status, due_at)."""
    now = now or timezone.now()
    return actions.filter(status__in=IN_FLIGHT, due_at__gt=now, due_at__lte=now + within)


def pending_actions_overdue(
    actions: QuerySet[PendingAction], *, overdue: bool = True, now: datetime | None = None
) -> QuerySet[PendingAction]:
    """Still waiting for Knox past their due time (escalated ones stay so
    until Knox decides); ``overdue=False``: every other action."""
    now = now or timezone.now()
    late = Q(status__in=IN_FLIGHT, due_at__lte=now)
    return actions.filter(late) if overdue else actions.exclude(late)


def knox_ep_id_get(*, user) -> str | None:
    """The user's Knox EP ID, or None."""
    return KnoxProfile.objects.filter(user=user).values_list("ep_id", flat=True).first() or None


APPROVER_LOOKUP_LIMIT = 10


def _may_name_approvers(user) -> None:
    """Who may learn people's EP IDs: whoever may request approvals (has one)."""
    if user is None or not knox_ep_id_get(user=user):
        raise Forbidden(
            "Only someone with a Knox EP ID may request approvals and look up approvers; "
            "ask an administrator to set yours.",
            code="approvals.no_ep_id",
        )


def _person(profile: KnoxProfile) -> dict[str, str]:
    user = profile.user
    full_name = user.get_full_name()
    username = user.get_username()
    return {
        "ep_id": profile.ep_id,
        "username": username,
        "name": full_name or username,
        "label": f"{full_name} ({username})" if full_name else username,
    }


def knox_approver_search(
    *, user, name: str, limit: int = APPROVER_LOOKUP_LIMIT
) -> list[dict[str, str]]:
    """Active people with a Knox EP ID whose name, username or EP ID holds every
    word of ``name``, for the request form's approver lookup: at most ``limit``,
    by name. Only for someone who may request approvals (``Forbidden``
    otherwise, and no EP ID is read)."""
    _may_name_approvers(user)
    words = name.split()
    if not words:
        return []
    profiles = KnoxProfile.objects.filter(ep_id__isnull=False, user__is_active=True)
    for word in words:
        profiles = profiles.filter(
            Q(user__username__icontains=word)
            | Q(user__first_name__icontains=word)
            | Q(user__last_name__icontains=word)
            | Q(ep_id__icontains=word)
        )
    profiles = profiles.select_related("user").order_by(
        "user__first_name", "user__last_name", "user__username"
    )
    return [_person(profile) for profile in profiles[:limit]]


def knox_approvers_named(*, user, ep_ids: list[str]) -> dict[str, dict[str, str]]:
    """Who has each of ``ep_ids`` (those no one in Bureau has are left out), for
    whoever may request approvals (``Forbidden`` otherwise)."""
    _may_name_approvers(user)
    profiles = KnoxProfile.objects.filter(ep_id__in=ep_ids).select_related("user")
    return {profile.ep_id: _person(profile) for profile in profiles}
