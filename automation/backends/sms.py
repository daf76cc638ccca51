"""SMS backends (``SMS_BACKEND``)."""

from __future__ import annotations

import sys
import threading
from typing import Any

from django.conf import settings

from automation.backends import SMSMessage
from automation.backends.http import check_gateway, json_answer, post_json

# LocmemBackend's messages, like django.core.mail.outbox; tests empty it.
outbox: list[SMSMessage] = []


class BaseBackend:
    def send(self, message: SMSMessage) -> dict[str, Any]:
        raise NotImplementedError


class ConsoleBackend(BaseBackend):
    """Development: writes each message to standard output."""

    _lock = threading.Lock()

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def send(self, message: SMSMessage) -> dict[str, Any]:
        with self._lock:
            self.stream.write(f"SMS to {message.to}:\n{message.message}\n{'-' * 40}\n")
            self.stream.flush()
        return {"backend": "console"}


class LocmemBackend(BaseBackend):
    """Tests: keeps each message in ``automation.backends.sms.outbox``."""

    def send(self, message: SMSMessage) -> dict[str, Any]:
        outbox.append(message)
        return {"backend": "locmem"}


class HTTPBackend(BaseBackend):
    """A generic JSON-over-HTTPS SMS gateway: ``POST SMS_GATEWAY_URL`` with
    ``{"to": "+82…", "message": "…"}`` and ``Authorization: Bearer
    SMS_GATEWAY_KEY``. A 2xx answer means the gateway took it (``sent``; one
    saying ``{"status": "delivered"}`` means ``delivered``)."""

    what = "SMS gateway"

    def __init__(self, url: str | None = None, key: str | None = None, timeout=None):
        self.url = url if url is not None else getattr(settings, "SMS_GATEWAY_URL", "")
        self.key = key if key is not None else getattr(settings, "SMS_GATEWAY_KEY", "")
        self.timeout = float(timeout or getattr(settings, "SMS_GATEWAY_TIMEOUT_SECONDS", 10))

    def send(self, message: SMSMessage) -> dict[str, Any]:
        check_gateway(
            url=self.url,
            key=self.key,
            what=self.what,
            url_setting="SMS_GATEWAY_URL",
            key_setting="SMS_GATEWAY_KEY",
        )
        response, provider = post_json(
            url=self.url,
            key=self.key,
            body={"to": message.to, "message": message.message},
            timeout=self.timeout,
            what=self.what,
        )
        answer = json_answer(response)
        if isinstance(answer, dict) and answer.get("status") == "delivered":
            provider["delivered"] = True
        return provider
