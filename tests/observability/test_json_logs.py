"""LOG_FORMAT=json: one JSON object per line, with the ids of the work in
progress, after the handler's filters have run."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.observability.context import log_context, reset_request_id, set_request_id
from config.observability.logs import JsonFormatter
from operations.tracking import tracked_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines():
    """A JSON handler on the ``bureau.test`` and ``django.request`` loggers;
    returns a function giving the parsed lines so far."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger("bureau.test"), logging.getLogger("django.request")]
    for logger in loggers:
        logger.addHandler(handler)
    logging.getLogger("bureau.test").setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)


def test_a_line_has_the_fields_and_the_ids_of_the_work_in_progress(json_lines):
    # given: a request id and a pending action in context
    token = set_request_id("req-1")
    try:
        with log_context(run_id=7, pending_action_id=12):
            # when
            logging.getLogger("bureau.test").warning(
                "job %s: two\nlines", 3, extra={"scan_job_id": 3}
            )
    finally:
        reset_request_id(token)

    # then
    (line,) = json_lines()
    assert line["message"] == "job 3: two\nlines"
    assert line["level"] == "WARNING"
    assert line["logger"] == "bureau.test"
    assert line["time"].endswith("+00:00") and "T" in line["time"]
    assert isinstance(line["process"], int)
    assert (line["request_id"], line["run_id"], line["pending_action_id"], line["scan_job_id"]) == (
        "req-1",
        7,
        12,
        3,
    )


def test_unknown_ids_are_left_out_and_exceptions_are_kept_as_text(json_lines):
    # when
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("bureau.test").exception("it failed")

    # then
    (line,) = json_lines()
    assert "request_id" not in line and "run_id" not in line
    assert "Traceback" in line["exception"] and "ValueError: boom" in line["exception"]


def test_the_line_carries_the_message_as_the_handlers_filters_left_it(json_lines):
    # given: a filter on the handler that rewrites messages (as the redacting one does)
    class Redact(logging.Filter):
        def filter(self, record):
            record.msg = record.getMessage().replace("hunter2", "[REDACTED]")
            record.args = ()
            return True

    handler = logging.getLogger("bureau.test").handlers[-1]
    redact = Redact()
    handler.addFilter(redact)
    try:
        # when
        logging.getLogger("bureau.test").warning("password=%s", "hunter2")
    finally:
        handler.removeFilter(redact)

    # then
    (line,) = json_lines()
    assert line["message"] == "password=[REDACTED]"


@pytest.mark.django_db
@pytest.mark.usefixtures("test_operation_types")
def test_lines_written_inside_a_tracked_run_carry_its_id(json_lines):
    # when
    with tracked_run("test.workspace_job") as tracker:
        logging.getLogger("bureau.test").info("inside")
    logging.getLogger("bureau.test").info("after")

    # then
    inside, after = json_lines()
    assert inside["run_id"] == tracker.run.pk
    assert "run_id" not in after


@pytest.mark.django_db
def test_lines_written_while_serving_a_request_carry_its_id(client, json_lines):
    # when: Django logs the 404 while the request is served
    client.get("/no/such/page/", HTTP_X_REQUEST_ID="req-404")

    # then
    lines = [line for line in json_lines() if line["logger"] == "django.request"]
    assert lines and all(line["request_id"] == "req-404" for line in lines)


def test_log_format_json_makes_every_line_of_a_process_json():
    # given: a process configured with LOG_FORMAT=json
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", "LOG_FORMAT": "json"}
    script = (
        "import logging\n"
        "import django\n"
        "django.setup()\n"
        "log = logging.getLogger('bureau.test')\n"
        "log.warning('first')\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    log.exception('second')\n"
    )

    # when
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # then
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["message"] for line in lines] == ["first", "second"]
    assert "ZeroDivisionError" in lines[1]["exception"]


def test_an_unknown_log_format_stops_the_process_with_a_clear_message():
    # given
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", "LOG_FORMAT": "xml"}

    # when
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # then
    assert result.returncode != 0
    assert "LOG_FORMAT must be plain or json, got 'xml'" in result.stderr


@pytest.mark.django_db
def test_lines_written_by_an_approval_handler_name_its_pending_action(json_lines):
    # given: a failed execution of a handler that logs, approved in Knox
    from approvals.registry import (
        any_requester,
        register_action_handler,
        unregister_action_handler,
    )
    from approvals.services import payload_sha256, pending_action_retry
    from tests.observability.factories import PendingActionFactory

    def handler(payload, *, pending_action):
        logging.getLogger("bureau.test").info("handling")
        return {"ok": True}

    register_action_handler("test.logging_handler", handler, authorize=any_requester)
    action = PendingActionFactory(
        action_type="test.logging_handler",
        status="failed",
        failure_stage="execute",
        approval_log__knox_status=2,
        approval_log__payload_sha256=payload_sha256({}),  # the payload it was approved with
    )
    try:
        # when: an operator retries it
        pending_action_retry(pending_action_id=action.pk)
    finally:
        unregister_action_handler("test.logging_handler")

    # then
    (line,) = [line for line in json_lines() if line["message"] == "handling"]
    assert line["pending_action_id"] == action.pk
    action.refresh_from_db()
    assert action.status == "executed"
