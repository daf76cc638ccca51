"""Pluggable senders for the ``sms`` and ``push`` channels, the way Django
does e-mail: the settings ``SMS_BACKEND`` and ``PUSH_BACKEND`` name a class
(a console backend for development, a locmem one for tests with an
``outbox`` list, an HTTP one for a real gateway).

A backend has one method, ``send(message) -> dict``: it hands one message
over and returns the provider's answer (stored, sanitised, on the delivery),
or raises a :class:`DeliveryError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

DEFAULT_SMS_BACKEND = "automation.backends.sms.ConsoleBackend"
DEFAULT_PUSH_BACKEND = "automation.backends.push.ConsoleBackend"


class DeliveryError(Exception):
    """The backend could not hand the message over. The message says why in
    words an operator can act on; it never holds the gateway's key."""

    retryable = False

    def __init__(self, message: str, *, provider_response: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.provider_response = provider_response or {}


class TemporaryFailure(DeliveryError):
    """It may pass (the gateway is down, busy or slow): try again later."""

    retryable = True


class PermanentRefusal(DeliveryError):
    """The provider refused this message for good (a number it cannot reach,
    a token it does not know): the delivery is ``bounced``."""


@dataclass(frozen=True)
class SMSMessage:
    to: str
    message: str
    reference: str = ""  # the delivery's notification_id


@dataclass(frozen=True)
class PushMessage:
    token: str
    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)


def get_sms_backend(backend: str | None = None, **kwargs):
    return import_string(backend or getattr(settings, "SMS_BACKEND", "") or DEFAULT_SMS_BACKEND)(
        **kwargs
    )


def get_push_backend(backend: str | None = None, **kwargs):
    return import_string(backend or getattr(settings, "PUSH_BACKEND", "") or DEFAULT_PUSH_BACKEND)(
        **kwargs
    )
