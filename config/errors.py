"""Bureau's domain errors.

Services raise these (or Django's ``ValidationError``); they never raise DRF
errors. ``config.api.exception_handler`` turns them into responses, admin
views into messages, and commands into one line and a non-zero exit.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A business rule said no. ``code`` is a stable dotted identifier."""

    status_code = 400
    default_code = "error"

    def __init__(
        self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra = extra or {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.message, **self.extra}


class InvalidInput(ApplicationError):
    status_code = 400
    default_code = "invalid"


class PermissionRefused(ApplicationError):
    """The caller may see the object but lacks the permission this change needs."""

    status_code = 403
    default_code = "permission_denied"


class NotFound(ApplicationError):
    status_code = 404
    default_code = "not_found"


class Conflict(ApplicationError):
    status_code = 409
    default_code = "conflict"


class InvalidTransition(Conflict):
    """A state change the state machine does not allow from the current state."""

    default_code = "invalid_transition"

    def __init__(self, *, subject: str, current: str, target: str, code: str | None = None):
        super().__init__(
            f"{subject} is {current}; it cannot become {target}.",
            code=code,
            extra={"current_state": current, "requested_state": target},
        )
        self.current = current
        self.target = target
