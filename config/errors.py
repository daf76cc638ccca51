"""Bureau's domain errors.

Services raise these (or Django's ``ValidationError``); they never raise DRF
errors. ``config.exception_handler`` turns them into responses, admin
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


class Forbidden(ApplicationError):
    """The caller may see the object but may not do this to it (a 403). When
    the caller may not even see it, raise ``NotFound`` instead."""

    status_code = 403
    default_code = "permission_denied"


def error_lines(error: BaseException) -> list[str]:
    """What went wrong, for a person: ``field: message`` for each field error
    of a Django or DRF ``ValidationError`` (nested fields dotted, errors that
    belong to no field as the bare message), the message of an
    ``ApplicationError``, else ``Type: text``."""
    if isinstance(error, ApplicationError):
        return [error.message]
    detail = getattr(error, "detail", None)  # DRF's ValidationError
    if detail is None and hasattr(error, "error_dict"):  # Django's, with fields
        detail = error.message_dict
    elif detail is None and hasattr(error, "error_list"):  # Django's, without
        detail = error.messages
    if detail is None:
        return [f"{type(error).__name__}: {error}"]
    return list(_detail_lines(detail, prefix=""))


_NO_FIELD = {"__all__", "non_field_errors"}


def _detail_lines(detail: Any, *, prefix: str):
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = prefix if key in _NO_FIELD else f"{prefix}.{key}" if prefix else str(key)
            yield from _detail_lines(value, prefix=field)
    elif isinstance(detail, (list, tuple)):
        for item in detail:
            yield from _detail_lines(item, prefix=prefix)
    else:
        yield f"{prefix}: {detail}" if prefix else str(detail)


def error_text(error: BaseException, *, sep: str = "\n") -> str:
    """``error_lines`` joined into one text."""
    return sep.join(error_lines(error))
