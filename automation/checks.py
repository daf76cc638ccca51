"""``manage.py check`` for automation's settings."""

from __future__ import annotations

from django.core.checks import Error

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
