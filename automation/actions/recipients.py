"""Recipients in action configs: ``{"users": [id or username…], "roles": [group name or id…]}``."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Q

from automation.conf import MAX_DB_INT


def _split(items) -> tuple[list[int], list[str]]:
    ids, names = [], []
    for item in items:
        if isinstance(item, bool):
            raise ValidationError(f"{item!r} is not a user/role reference.")
        # isascii: "²".isdigit() is true but int("²") fails; a digit string
        # longer than any id is refused before int() (which caps at 4300 digits).
        if isinstance(item, int) or (isinstance(item, str) and item.isascii() and item.isdigit()):
            if isinstance(item, str) and len(item) > 19:
                raise ValidationError(f"{item[:20]!r}… is not a user/role id.")
            number = int(item)
            if not 1 <= number <= MAX_DB_INT:
                raise ValidationError(f"{item!r} is not a user/role id.")
            ids.append(number)
        elif isinstance(item, str) and item:
            names.append(item)
        else:
            raise ValidationError(f"{item!r} is not a user/role reference.")
    return ids, names


def check_shape(recipients: Any, *, key: str = "recipients") -> None:
    if recipients in (None, {}):
        return
    if not isinstance(recipients, dict):
        raise ValidationError(f"{key} must be an object with 'users' and/or 'roles'.")
    unknown = sorted(set(recipients) - {"users", "roles"})
    if unknown:
        raise ValidationError(f"{key} has unknown keys: {', '.join(unknown)}.")
    for part in ("users", "roles"):
        if not isinstance(recipients.get(part, []), list):
            raise ValidationError(f"{key}.{part} must be a list.")


def resolve(
    recipients: dict | None, *, key: str = "recipients", cache: dict | None = None
) -> tuple[list, list]:
    """(users, groups); ValidationError naming any that do not exist. ``cache``
    (the worker's per-batch dict) saves looking the same recipients up again."""
    if cache is not None:
        cache_key = ("recipients", key, json.dumps(recipients, sort_keys=True, default=str))
        if cache_key not in cache:
            cache[cache_key] = resolve(recipients, key=key)
        return cache[cache_key]
    recipients = recipients or {}
    check_shape(recipients, key=key)
    users_model = get_user_model()
    user_ids, usernames = _split(recipients.get("users", []))
    group_ids, group_names = _split(recipients.get("roles", []))
    users = list(
        users_model.objects.filter(Q(pk__in=user_ids) | Q(username__in=usernames)).order_by("pk")
    )
    groups = list(
        Group.objects.filter(Q(pk__in=group_ids) | Q(name__in=group_names)).order_by("pk")
    )
    missing_users = [str(i) for i in user_ids if i not in {u.pk for u in users}] + [
        n for n in usernames if n not in {u.username for u in users}
    ]
    missing_groups = [str(i) for i in group_ids if i not in {g.pk for g in groups}] + [
        n for n in group_names if n not in {g.name for g in groups}
    ]
    errors = []
    if missing_users:
        errors.append(f"{key}.users: no such user(s): {', '.join(missing_users)}.")
    if missing_groups:
        errors.append(f"{key}.roles: no such role(s): {', '.join(missing_groups)}.")
    if errors:
        raise ValidationError(errors)
    return users, groups


def users_of(users, groups) -> list:
    """Every user reached: the users named and the members of the groups named."""
    users_model = get_user_model()
    reached = users_model.objects.filter(
        Q(pk__in=[u.pk for u in users]) | Q(groups__in=groups), is_active=True
    )
    return list(reached.distinct().order_by("pk"))
