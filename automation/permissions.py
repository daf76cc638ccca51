"""The permission each operator action on automation needs.

Services check it themselves (``require``), whoever calls them: the API, the
admin, a command. The admin offers an action only to a user ``may`` allow,
from the same table, so the two always agree. ``actor=None`` is Bureau
itself (a schedule, a command run by someone on call) and is not checked.
"""

from __future__ import annotations

from config.errors import Forbidden

# Any one of the permissions listed is enough.
RETRY_DELIVERY = ("automation.change_notificationdelivery",)
REPLAY_EVENT = ("automation.change_automationrule",)
DRY_RUN_RULE = ("automation.dry_run_automationrule", "automation.change_automationrule")
CHANGE_RULE = ("automation.change_automationrule",)
DELETE_RULE = ("automation.delete_automationrule",)
SET_ALERT_STATUS = ("automation.change_alert",)


def may(actor, needed: tuple[str, ...]) -> bool:
    return actor is None or any(actor.has_perm(permission) for permission in needed)


def require(actor, needed: tuple[str, ...], *, doing: str) -> None:
    if not may(actor, needed):
        raise Forbidden(
            f"You may not {doing}: that needs the permission {' or '.join(needed)}.",
            extra={"required_permissions": list(needed)},
        )
