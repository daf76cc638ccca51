"""Push backends (``PUSH_BACKEND``)."""

from __future__ import annotations

import sys
import threading
from typing import Any

from django.conf import settings

from automation.backends import PermanentRefusal, PushMessage, TemporaryFailure
from automation.backends.http import check_gateway, json_answer, post_json

# LocmemBackend's messages, like django.core.mail.outbox; tests empty it.
outbox: list[PushMessage] = []

# FCM-style per-message errors in a 200 answer ({"failure": 1, "results": [{"error": …}]}).
TOKEN_GONE = {"NotRegistered", "InvalidRegistration", "MismatchSenderId", "UNREGISTERED"}
TRY_LATER = {"Unavailable", "InternalServerError", "DeviceMessageRateExceeded", "UNAVAILABLE"}


class BaseBackend:
    def send(self, message: PushMessage) -> dict[str, Any]:
        raise NotImplementedError


class ConsoleBackend(BaseBackend):
    """Development: writes each notification to standard output."""

    _lock = threading.Lock()

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def send(self, message: PushMessage) -> dict[str, Any]:
        with self._lock:
            self.stream.write(
                f"Push to {message.token[:12]}…:\n{message.title}\n{message.body}\n{'-' * 40}\n"
            )
            self.stream.flush()
        return {"backend": "console"}


class LocmemBackend(BaseBackend):
    """Tests: keeps each notification in ``automation.backends.push.outbox``."""

    def send(self, message: PushMessage) -> dict[str, Any]:
        outbox.append(message)
        return {"backend": "locmem"}


class HTTPBackend(BaseBackend):
    """A web-push / FCM-style HTTP endpoint: ``POST PUSH_GATEWAY_URL`` with
    ``{"to": token, "notification": {"title", "body"}, "data": {…}}`` and
    ``Authorization: Bearer PUSH_GATEWAY_KEY``. A token the service reports
    unregistered (HTTP 404/410, or an FCM-style ``NotRegistered`` result) is a
    bounce."""

    what = "push gateway"

    def __init__(self, url: str | None = None, key: str | None = None, timeout=None):
        self.url = url if url is not None else getattr(settings, "PUSH_GATEWAY_URL", "")
        self.key = key if key is not None else getattr(settings, "PUSH_GATEWAY_KEY", "")
        self.timeout = float(timeout or getattr(settings, "PUSH_GATEWAY_TIMEOUT_SECONDS", 10))

    def send(self, message: PushMessage) -> dict[str, Any]:
        check_gateway(
            url=self.url,
            key=self.key,
            what=self.what,
            url_setting="PUSH_GATEWAY_URL",
            key_setting="PUSH_GATEWAY_KEY",
        )
        response, provider = post_json(
            url=self.url,
            key=self.key,
            body={
                "to": message.token,
                "notification": {"title": message.title, "body": message.body},
                "data": message.data,
            },
            timeout=self.timeout,
            what=self.what,
        )
        error = _result_error(json_answer(response))
        if error in TOKEN_GONE:
            raise PermanentRefusal(
                f"The {self.what} does not know the recipient's push token ({error}).",
                provider_response=provider,
            )
        if error in TRY_LATER:
            raise TemporaryFailure(f"The {self.what} said {error}.", provider_response=provider)
        if error:
            raise PermanentRefusal(
                f"The {self.what} refused the notification ({error[:50]}).",
                provider_response=provider,
            )
        return provider


def _result_error(answer: Any) -> str:
    results = answer.get("results") if isinstance(answer, dict) else None
    if isinstance(results, list) and results and isinstance(results[0], dict):
        error = results[0].get("error")
        return error if isinstance(error, str) else ""
    return ""
