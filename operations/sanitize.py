"""Sanitising what the ledger keeps about failures, and what logs say.

Failure summaries are read by operators and shipped to logs; they must never
carry tokens, passwords, e-mail addresses or raw payloads. Every message is
passed through :func:`sanitize_message` and every code through
:func:`normalize_code` before it is stored.

Patterns alone miss a secret that a remote system echoes back bare ("your
token abc123 is not allowed here"), so the values of the configured secrets
themselves are removed too: every setting named in ``BUREAU_SECRET_SETTINGS``
(apps add theirs there) and every database password. :class:`RedactSecretsFilter`
applies the same to every log record.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

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
# "password hunter2", "credential is abc": a secret after its name with no
# "=" or ":". The word after the name is kept when it is ordinary English
# ("password authentication failed", "token was rejected").
_PHRASE_KEYS = r"pass(?:word|wd|phrase)s?|pwd|credentials?|secrets?|tokens?|api[ _\-]?keys?"
_PHRASE = re.compile(
    r"(?i)(?P<key>[a-z0-9_\-]*(?:" + _PHRASE_KEYS + r"))\b"
    r"(?P<sep>\s+(?:(?:is|was|of|to)\s+)?)"
    r"(?P<value>\"[^\"]*\"?|'[^']*'?|[^\s,;]+)"
)
_PHRASE_KEY_ONLY = re.compile(r"(?i)(?:" + _PHRASE_KEYS + r")")
_STOPWORDS_TEXT = """
    a an the and or not no none is are was were be been being has had have for of to in on at
    by with from as that this it its must should will would can cannot could may might does did do
    too very field fields authentication authorization auth login logon failed failure fails
    rejected refused denied invalid incorrect wrong expired expires expiry required missing empty
    mismatch reset change changed changes policy endpoint refresh type length provided supplied
    given needed set unset configured check checked verification validation error errors value
    values rotation rotated hash hashed file manager protected based store stored storage request
    requested requests header headers name user username please here there now again only also
    used use using usage if when while but so then than yet after before
"""
_PHRASE_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

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


def _redact_phrases(text: str) -> str:
    """``password hunter2`` → ``password [REDACTED]``. Scanned by hand, not with
    ``re.sub``: a word that is kept (ordinary English, or another key as in
    "token password hunter2") is looked at again as a key itself."""
    pieces: list[str] = []
    position = 0
    while match := _PHRASE.search(text, position):
        value = match.group("value")
        word = value.strip("\"'.!?()[]{}").lower()
        if (
            word in _PHRASE_STOPWORDS
            or value.lstrip("\"'").startswith(PLACEHOLDERS)
            or _PHRASE_KEY_ONLY.fullmatch(value.strip("\"'"))
        ):
            pieces.append(text[position : match.start("value")])
            position = match.start("value")
            continue
        pieces.append(text[position : match.start("value")] + REDACTED)
        position = match.end("value")
    pieces.append(text[position:])
    return "".join(pieces)


# --- configured secrets ------------------------------------------------------------------

# Shorter values are not redacted: every "abc" in every message would go, and
# a secret that short is no secret.
MIN_SECRET_LENGTH = 4


def _collect(value: Any, into: list[str]) -> None:
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, into)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _collect(item, into)


def configured_secret_values() -> tuple[str, ...]:
    """The values of the settings named in ``BUREAU_SECRET_SETTINGS`` (strings,
    or lists and dicts of strings) and every database's password."""
    try:
        names = getattr(settings, "BUREAU_SECRET_SETTINGS", ())
        databases = settings.DATABASES
    except ImproperlyConfigured:  # used outside a configured Django (a bare script)
        return ()
    values: list[str] = []
    for name in names:
        _collect(getattr(settings, name, None), values)
    for database in databases.values():
        _collect(database.get("PASSWORD"), values)
    return tuple(sorted({v for v in values if len(v.strip()) >= MIN_SECRET_LENGTH}))


def _spellings(value: str) -> set[str]:
    """How a secret may appear in a message: as is, URL-encoded, inside JSON or
    HTML, or with its whitespace folded."""
    return {
        value,
        " ".join(value.split()),
        quote(value, safe=""),
        quote_plus(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value),
    }


@functools.lru_cache(maxsize=16)
def _secret_pattern(values: tuple[str, ...]) -> re.Pattern[str] | None:
    spellings = {
        spelling
        for value in values
        for spelling in _spellings(value)
        if len(spelling) >= MIN_SECRET_LENGTH
        and not any(spelling in placeholder for placeholder in PLACEHOLDERS)
    }
    if not spellings:
        return None
    # Longest first: at one position the longer spelling wins.
    ordered = sorted(spellings, key=lambda s: (-len(s), s))
    return re.compile("|".join(re.escape(s) for s in ordered))


def redact_configured_secrets(text: str) -> str:
    """Replace every configured secret value in ``text`` by ``[REDACTED]``."""
    pattern = _secret_pattern(configured_secret_values())
    if pattern is None:
        return text
    # Again while one is found: a replacement can join its neighbours into a
    # secret's spelling (a secret starting with "]" after "[REDACTED").
    for _ in range(3):
        text, found = pattern.subn(REDACTED, text)
        if not found:
            break
    return text


def _redact_patterns(text: str) -> str:
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group('key')}{m.group('sep')}{REDACTED}", text)
    return _redact_phrases(text)


def redact_secrets(text: str) -> str:
    """Configured secret values and secret-looking patterns (bearer tokens,
    ``password=…``, ``password …``, credentials in URLs, JWTs) redacted; the
    rest of ``text`` is left as it is (logs keep their layout, hashes and ids)."""
    text = redact_configured_secrets(text.replace("\x00", ""))
    return redact_configured_secrets(_redact_patterns(text))


def sanitize_message(message: Any, *, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """Redact secrets and personal data from ``message`` and bound its length."""
    text = message if isinstance(message, str) else str(message)
    text = redact_configured_secrets(text.replace("\x00", ""))
    text = _redact_patterns(text)
    text = _EMAIL.sub(REDACTED_EMAIL, text)
    text = _LONG_HEX.sub(REDACTED_BLOB, text)
    text = _BLOB.sub(_redact_blob, text)
    text = redact_configured_secrets(" ".join(text.split()))
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


class RedactSecretsFilter(logging.Filter):
    """Set on the log handlers (``LOGGING``): every record leaves with its
    message, arguments, exception text and stack redacted by
    :func:`redact_secrets`. The exception itself is dropped from the record
    once its text is kept, so no later formatter can print it raw."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the handler's to report
            return True
        record.msg, record.args = redact_secrets(message), ()
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_secrets(record.stack_info)
        return True


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
