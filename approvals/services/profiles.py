"""A user's identity in Knox: requesting an approval needs an EP ID."""

from __future__ import annotations

from django.db import transaction

from approvals.models import KnoxProfile


@transaction.atomic
def knox_profile_set(*, user, ep_id: str | None) -> KnoxProfile:
    """Set (or clear) a user's EP ID; a duplicate is refused and nothing is written."""
    profile = KnoxProfile.objects.filter(user=user).first() or KnoxProfile(user=user)
    profile.ep_id = (ep_id or "").strip() or None
    profile.full_clean()
    profile.save()
    return profile
