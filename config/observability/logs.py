"""JSON lines for log collectors (``LOG_FORMAT=json``).

One object per line: ``time`` (UTC, ISO 8601, milliseconds), ``level``,
``logger``, ``message``, ``process``, and, where known, ``request_id``,
``run_id``, ``pending_action_id``, ``scan_job_id`` (from the context
variables in :mod:`config.observability.context`, passed with
``extra={...}``, or, for Django's request log, from the request itself), then
``exception`` / ``stack`` text.

Redaction hook: the formatter runs after the handler's filters and emits
``record.getMessage()`` at that moment, so a filter that rewrites
``record.msg`` / ``record.args`` (the redacting filter in settings LOGGING)
is what ends up in the line. Exception text is taken from ``record.exc_text``
when a filter has already rendered (and redacted) it; otherwise it is
rendered here. Only the fields above are emitted: arbitrary ``extra`` values
(payloads, headers) never reach the line.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from config.observability.context import CONTEXT_FIELDS, current_ids, current_request_id


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        # Django logs a 4xx after the middleware has finished (and the context
        # is gone), but passes the request along: take the id from there.
        request_id = current_request_id() or getattr(
            getattr(record, "request", None), "request_id", None
        )
        known = {"request_id": request_id, **current_ids()}
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is None:
                value = known.get(field)
            if value is not None:
                line[field] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)
