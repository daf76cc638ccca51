"""What a log line or a ledger row should know about the work in progress.

Context variables, so each request thread (gunicorn's gthread workers) and
each django-q2 worker sees its own values: the request id set by
``RequestIdMiddleware`` (or carried by a task from the request that queued
it), the operation run ``tracked_run`` is in, and the pending action or scan
job being worked on where the code says so with :func:`log_context`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# The fields a JSON log line carries when they are known (config.observability.logs).
CONTEXT_FIELDS = ("request_id", "run_id", "pending_action_id", "scan_job_id")

_request_id: ContextVar[str | None] = ContextVar("bureau_request_id", default=None)
_ids: ContextVar[dict[str, int | str] | None] = ContextVar("bureau_log_ids", default=None)

# An incoming X-Request-ID is kept when it looks like an id (a UUID, a hex or
# base64-ish token, a load balancer's trace id): nothing that could break a
# log line or a header, and bounded.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def sane_request_id(value: str | None) -> str | None:
    """``value`` if it is acceptable as a request id, else ``None``."""
    if value and _SANE_REQUEST_ID.match(value):
        return value
    return None


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None):
    """Set the request id; returns the token to restore the previous one."""
    return _request_id.set(value)


def reset_request_id(token) -> None:
    _request_id.reset(token)


def current_ids() -> dict[str, int | str]:
    """The ids bound by :func:`log_context` (run, pending action, scan job)."""
    return dict(_ids.get() or {})


@contextmanager
def log_context(**ids: int | str | None) -> Iterator[None]:
    """Bind ids (``run_id``, ``pending_action_id``, ``scan_job_id``) to every
    log record emitted inside the block; ``None`` values are ignored."""
    unknown = set(ids) - set(CONTEXT_FIELDS[1:])
    if unknown:
        raise ValueError(f"unknown log context fields: {', '.join(sorted(unknown))}")
    merged = {**(_ids.get() or {}), **{k: v for k, v in ids.items() if v is not None}}
    token = _ids.set(merged)
    try:
        yield
    finally:
        _ids.reset(token)
