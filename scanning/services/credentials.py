"""Scan agent credentials: tokens are shown once and stored as a sha256; a
request on the agent API is authenticated by looking the hash up."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from config.errors import Conflict, InvalidInput
from config.transitions import lock
from scanning.models import ScanAgent

TOKEN_PREFIX = "bsa_"  # "Bureau scan agent": recognisable in a leaked-secrets scan


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class IssuedCredential:
    agent: ScanAgent
    token: str  # the only moment the token exists in clear
    created: bool


def scan_agent_create(*, name: str, actor=None, token: str | None = None) -> IssuedCredential:
    """Create an agent and its token. ``token`` lets provisioning keep a token
    it already holds (``scanning_create_agent --token-file``); it must look
    like one of ours."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput(
            "An agent name of 1–100 characters is required.", code="scan_agent.bad_name"
        )
    token = token or _new_token()
    scan_agent_token_check(token)
    with transaction.atomic():
        if ScanAgent.objects.filter(name=name).exists():
            raise Conflict(f"A scan agent named {name!r} already exists.", code="scan_agent.exists")
        agent = ScanAgent.objects.create(
            name=name, token_hash=_hash_token(token), token_prefix=token[:12], created_by=actor
        )
    return IssuedCredential(agent=agent, token=token, created=True)


def scan_agent_rotate_token(*, agent_id: int, token: str | None = None) -> IssuedCredential:
    token = token or _new_token()
    scan_agent_token_check(token)
    with transaction.atomic():
        agent = lock(ScanAgent, pk=agent_id)
        agent.token_hash = _hash_token(token)
        agent.token_prefix = token[:12]
        agent.is_active = True
        agent.save(update_fields=["token_hash", "token_prefix", "is_active"])
    return IssuedCredential(agent=agent, token=token, created=False)


def scan_agent_provision(*, name: str, token: str | None) -> IssuedCredential | None:
    """Idempotent provisioning for ``make run``: make sure an active agent
    ``name`` accepts ``token``. Returns None when nothing had to change, else
    the credential to write down (a new token when ``token`` was None)."""
    agent = ScanAgent.objects.filter(name=name).first()
    if agent is None:
        return scan_agent_create(name=name, token=token)
    if token is not None and agent.is_active and agent.token_hash == _hash_token(token):
        return None
    return scan_agent_rotate_token(agent_id=agent.pk, token=token)


def scan_agent_authenticate(*, token: str) -> ScanAgent | None:
    """The active agent ``token`` belongs to (None for any other token), its
    ``last_seen_at`` brought up to date."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    agent = ScanAgent.objects.filter(token_hash=_hash_token(token), is_active=True).first()
    if agent is not None:
        now = timezone.now()
        # A write per request would serialise every agent call on SQLite; a
        # minute's precision is plenty for "last seen".
        if agent.last_seen_at is None or (now - agent.last_seen_at).total_seconds() > 60:
            ScanAgent.objects.filter(pk=agent.pk).update(last_seen_at=now)
            agent.last_seen_at = now
    return agent


def scan_agent_token_check(token: str) -> None:
    """A token must look like one of ours before it is stored or sent."""
    if (
        not token.startswith(TOKEN_PREFIX)
        or len(token) < len(TOKEN_PREFIX) + 32
        or not token.isprintable()
        or " " in token
    ):
        raise InvalidInput(
            f"A scan agent token starts with {TOKEN_PREFIX!r} and has at least 32 more characters.",
            code="scan_agent.bad_token",
        )
