"""Who may change scanning data. The services ask; the API asks the same
before it reads a request's body."""

from __future__ import annotations

from scanning.errors import OperatorPermissionRequired

OPERATE_SCANNER = "scanning.operate_scanner"


def require_operator(actor) -> None:
    """People need ``scanning.operate_scanner`` to change scan jobs and batches.
    ``actor=None`` is Bureau itself (a schedule, a task, ``manage.py`` on the
    server). Checked before the job is looked up: a refusal says nothing about
    whether the job exists."""
    if actor is not None and not actor.has_perm(OPERATE_SCANNER):
        raise OperatorPermissionRequired(
            "You need the 'operate scanner' permission to change scan jobs."
        )
