"""``manage.py check`` for automation's settings."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error
from django.utils.module_loading import import_string

from automation import conf


def check_webhook_secrets(app_configs=None, **kwargs) -> list[Error]:
    return [
        Error(
            f"AUTOMATION_WEBHOOK_SECRETS lists {name!r}, which is not a webhook secret "
            "(rules can never sign with it).",
            hint="List only AUTOMATION_WEBHOOK_SECRET_<NAME> settings (the environment "
            "variables holding each webhook's HMAC key).",
            id="automation.E001",
        )
        for name in conf.invalid_webhook_secret_names()
    ]


def check_notification_backends(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    for setting in ("SMS_BACKEND", "PUSH_BACKEND"):
        path = getattr(settings, setting, "")
        if not path:
            continue
        try:
            backend = import_string(path)
        except ImportError:
            backend = None
        if not callable(getattr(backend, "send", None)):
            errors.append(
                Error(
                    f"{setting} names {path!r}, which is not a backend class.",
                    hint="Use automation.backends.sms.ConsoleBackend, …LocmemBackend or "
                    "…HTTPBackend (push: automation.backends.push.*), or a class with send().",
                    id="automation.E002",
                )
            )
    return errors


def check_inbound_secrets(app_configs=None, **kwargs) -> list[Error]:
    return [
        Error(
            f"AUTOMATION_INBOUND_SECRETS lists {name!r}, which is not an inbound secret "
            "(no source can ever use it).",
            hint="List only AUTOMATION_INBOUND_SECRET_<NAME> settings (the environment "
            "variables holding each inbound source's HMAC key).",
            id="automation.E003",
        )
        for name in conf.invalid_inbound_secret_names()
    ]
