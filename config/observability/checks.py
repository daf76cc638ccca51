"""System checks for the observability settings (run by ``check --deploy``
and at every start)."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core.checks import Error, Warning, register

MIN_METRICS_TOKEN_LENGTH = 24


@register()
def check_metrics_access(app_configs=None, **kwargs):
    problems = []
    for entry in settings.METRICS_ALLOWED_IPS:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            problems.append(
                Error(
                    f"METRICS_ALLOWED_IPS has {entry!r}, which is not an IP address or network.",
                    hint="Comma-separated addresses or CIDR networks, e.g. 10.0.0.0/8,127.0.0.1.",
                    id="observability.E001",
                )
            )
    token = settings.METRICS_TOKEN
    if token and len(token) < MIN_METRICS_TOKEN_LENGTH:
        problems.append(
            Warning(
                f"METRICS_TOKEN is shorter than {MIN_METRICS_TOKEN_LENGTH} characters.",
                hint='python -c "import secrets; print(secrets.token_urlsafe(32))"',
                id="observability.W001",
            )
        )
    return problems
