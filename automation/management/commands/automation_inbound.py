"""``automation_inbound list``: the inbound sources and their counters;
``automation_inbound send SOURCE --json '{…}'``: sign a test event with the
source's secret and post it to a running server (to check the wiring)."""

from __future__ import annotations

import json
import time
import uuid

import requests
from django.core.management.base import CommandError
from django.urls import reverse

from automation import conf
from automation.models import InboundSource
from automation.services.inbound import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    inbound_signature,
)
from config.commands import BureauCommand
from operations.sanitize import sanitize_message

DEFAULT_URL = "http://127.0.0.1:8000"


class Command(BureauCommand):
    help = (
        "Inbound webhook sources: 'list' shows each with its counters; 'send SOURCE --json "
        "BODY' signs BODY with the source's secret and posts it to a running server."
    )

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="subcommand", required=True)
        commands.add_parser("list", help="the sources, their secrets' settings and counters")
        send = commands.add_parser("send", help="sign and post a test event")
        send.add_argument("source", help="the source's slug")
        send.add_argument("--json", required=True, dest="body", help="the event, a JSON object")
        send.add_argument("--url", default=DEFAULT_URL, help=f"the server (default {DEFAULT_URL})")
        send.add_argument("--key", help="the idempotency key (default: a new UUID)")
        send.add_argument("--timeout", type=float, default=10, help="seconds (default 10)")

    def run(self, *args, subcommand, **options):
        if subcommand == "list":
            self._list()
        else:
            self._send(**options)

    def _list(self) -> None:
        sources = list(InboundSource.objects.order_by("slug"))
        if not sources:
            self.stdout.write(
                "no inbound sources (add one in the console: Automation → Inbound sources)"
            )
            return
        for source in sources:
            refusals = ", ".join(f"{r} {n}" for r, n in source.refusals().items() if n) or "none"
            self.stdout.write(
                f"{source.slug}  {'active' if source.is_active else 'inactive'}  "
                f"secret {source.secret_setting} ({_secret_state(source)})  "
                f"accepted {source.accepted}  refused: {refusals}"
            )

    def _send(self, *, source, body, url, key, timeout, **options) -> None:
        found = InboundSource.objects.filter(slug=source).first()
        if found is None:
            raise CommandError(f"no inbound source {source!r}")
        try:
            payload = json.loads(body)
        except ValueError as error:
            raise CommandError(f"--json is not JSON: {error}") from None
        if not isinstance(payload, dict):
            raise CommandError("--json must be a JSON object")
        try:
            secret = conf.inbound_secret(found.secret_setting)
        except ValueError:
            raise CommandError(
                f"{found.secret_setting} is not listed in AUTOMATION_INBOUND_SECRETS"
            ) from None
        if not secret:
            raise CommandError(f"{found.secret_setting} is not set in this environment")
        key = key or str(uuid.uuid4())
        timestamp = str(int(time.time()))
        raw = json.dumps(payload, separators=(",", ":")).encode()
        target = url.rstrip("/") + reverse("automation-inbound", kwargs={"source": found.slug})
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            IDEMPOTENCY_HEADER: key,
            SIGNATURE_HEADER: inbound_signature(
                secret=secret, timestamp=timestamp, idempotency_key=key, body=raw
            ),
        }
        try:
            response = requests.post(target, data=raw, headers=headers, timeout=timeout)
        except requests.RequestException as error:
            raise CommandError(
                f"could not post to {target}: {type(error).__name__}: "
                f"{sanitize_message(str(error), limit=200)}"
            ) from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {"detail": sanitize_message(response.text, limit=200)}
        if response.status_code != 202:
            raise CommandError(
                f"{target} answered {response.status_code} "
                f"{answer.get('code', '')}: {answer.get('detail', '')}".replace("  ", " ")
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"accepted: event {answer.get('event')} (idempotency key {key}) at {target}"
            )
        )


def _secret_state(source: InboundSource) -> str:
    try:
        return "set" if conf.inbound_secret(source.secret_setting) else "NOT SET"
    except ValueError:
        return "NOT LISTED in AUTOMATION_INBOUND_SECRETS"
