"""Sanitising what the ledger keeps about failures.

Failure summaries are read by operators and shipped to logs; they must never
carry tokens, passwords, e-mail addresses or raw payloads. Every message is
passed through :func:`sanitize_message` and every code through
:func:`normalize_code` before it is stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MAX_MESSAGE_LENGTH = 500
MAX_FAILURES = 20

REDACTED = "[REDACTED]"
REDACTED_EMAIL = "[REDACTED_EMAIL]"
REDACTED_BLOB = "[REDACTED_BLOB]"
PLACEHOLDERS = (REDACTED, REDACTED_EMAIL, REDACTED_BLOB)

_CODE_OK = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
FALLBACK_CODE = "error.unknown"

# Order matters: a bearer token is removed before "key=value" could eat only
# the word "Bearer" and leave the token itself behind.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/@]+@")
_AUTH_HEADER = re.compile(
    r"(?i)(authorization\s*[:=]\s*)(?:\"[^\"]*\"|'[^']*'|[^\s,;]+(?:\s+[^\s,;\"']+)?)"
)
_BEARER = re.compile(r"(?i)(bearer|basic)(\s+)[^\s,;'\"]+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_SECRET_KEYS = (
    r"pass(?:word|wd|phrase)?|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key"
    r"|private[_\-]?key|credentials?|session(?:[_\-]?id)?|cookie|signature|otp"
)
_KEY_VALUE = re.compile(
    r"(?i)(?P<key>[a-z0-9_\-]*(?:" + _SECRET_KEYS + r")[a-z0-9_\-]*)"
    r"(?P<sep>[\"']?\s*(?:=|:)\s*)"
    r"(?P<value>\"[^\"]*\"?|'[^']*'?|[^\s,;&\"'}\]\)]+)"
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_LONG_HEX = re.compile(r"[0-9a-fA-F]{32,}")
_BLOB = re.compile(r"[A-Za-z0-9+/=_\-]{32,}")
_PLAIN_WORDS = re.compile(r"^[a-z0-9]+(?:[/_\-.][a-z0-9]+)+/?$")


def _redact_blob(match: re.Match[str]) -> str:
    text = match.group(0)
    # Paths and snake_case names are long runs of the same alphabet; keep the
    # ones made of short lowercase words, redact everything else.
    segments = re.split(r"[/_\-.]", text)
    if _PLAIN_WORDS.match(text.lstrip("/")) and max(map(len, segments)) <= 24:
        return text
    return REDACTED_BLOB


def sanitize_message(message: Any, *, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """Redact secrets and personal data from ``message`` and bound its length."""
    text = message if isinstance(message, str) else str(message)
    text = text.replace("\x00", "")
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group('key')}{m.group('sep')}{REDACTED}", text)
    text = _EMAIL.sub(REDACTED_EMAIL, text)
    text = _LONG_HEX.sub(REDACTED_BLOB, text)
    text = _BLOB.sub(_redact_blob, text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def normalize_code(code: Any) -> str:
    """Codes are dotted lowercase identifiers (``knox.timeout``); anything else
    is folded into that shape, or replaced by ``error.unknown``."""
    text = str(code or "").strip().lower()
    text = re.sub(r"[^a-z0-9_.]+", "_", text)
    text = re.sub(r"\.{2,}", ".", text).strip("._")
    text = ".".join(part.strip("_") for part in text.split("."))
    if _CODE_OK.match(text):
        return text[:100]
    if text and re.match(r"^[a-z][a-z0-9_]*$", text):
        return f"error.{text}"[:100]
    return FALLBACK_CODE


def sanitize_failures(failures: Iterable[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """Normalise a list of ``{code, message}`` entries, keeping at most
    ``MAX_FAILURES`` of them (the last kept entry says how many were dropped)."""
    cleaned = [
        {"code": normalize_code(f.get("code")), "message": sanitize_message(f.get("message", ""))}
        for f in (failures or [])
    ]
    if len(cleaned) > MAX_FAILURES:
        dropped = len(cleaned) - (MAX_FAILURES - 1)
        cleaned = cleaned[: MAX_FAILURES - 1] + [
            {"code": "failures.truncated", "message": f"{dropped} more failures were not kept."}
        ]
    return cleaned
