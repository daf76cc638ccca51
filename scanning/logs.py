"""The web server's request log without the scan agent's routine polls.

The agent asks for work every few seconds and reports a heartbeat every few
more: under ``make run`` (runserver logs every request) that buried everything
else in the console. Answered polls are dropped; a refused or failed one (4xx,
5xx) is still logged, and the agent itself logs its state changes."""

from __future__ import annotations

import logging

AGENT_POLLS = ("/api/v1/scanning/agent/claim/", "/api/v1/scanning/agent/heartbeat/")


class QuietAgentPolls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if not isinstance(status, int) or status >= 400 or not record.args:
            return True
        request_line = str(record.args[0])  # "POST /api/v1/scanning/agent/claim/ HTTP/1.1"
        return not any(f" {path} " in request_line for path in AGENT_POLLS)
