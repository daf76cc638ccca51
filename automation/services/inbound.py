"""Inbound webhooks: the sources external systems post as, and their posts.

A post to ``/api/v1/automation/inbound/<slug>/`` carries three headers:

- ``X-Bureau-Timestamp``: the time it was signed, in Unix seconds;
- ``Idempotency-Key``: the sender's id for the event, 1–100 visible ASCII
  characters; a repeat of it is never processed again;
- ``X-Bureau-Signature-256``: ``sha256=`` and the hex HMAC-SHA256, with the
  source's secret, of ``<timestamp>.<idempotency key>.<body>`` (the raw bytes
  of the body).

Header and format are those of Bureau's outbound webhooks
(``automation.senders.sign``); the timestamp and the idempotency key are signed with the
body so that neither can be changed: a replay of a captured post is refused
once its timestamp is older than AUTOMATION_INBOUND_TOLERANCE_SECONDS, and
within that window by its key.

The checks run in this order, and nothing but the size of the body is told
before the signature verifies: an unknown source, an inactive one, a source
whose secret is not configured and a wrong or missing signature all get the
same 401, so the answer does not say whether a source exists (a source
whose secret is not configured says so in the log, by the setting's name).

1. body over AUTOMATION_INBOUND_MAX_BYTES: 413 (``too_large``);
2. unknown or inactive source, missing or wrong signature: 401
   (``signature``, or ``inactive`` on the source's counters);
3. timestamp not Unix seconds, or further from now than the tolerance: 401
   (``timestamp``);
4. missing or malformed idempotency key, body not a JSON object: 400 (``body``);
5. an idempotency key the source already sent: 409 naming the event it
   became (``repeat``) — the sender may take it as delivered.

Accepted: 202 with the event's id; the event is in the outbox and rules with
the ``inbound`` trigger on the source's entity match it after commit. Every
refusal is counted on the source (when it exists) and logged in one line;
the secret's value never appears in answers, logs or errors.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from automation import conf
from automation.choices import EntityKind, InboundRefusal, Trigger
from automation.entities import ensure_reference_rows, inbound_label, invalidate_watch_index
from automation.events import record_event
from automation.models import AutomationEvent, Entity, EntityType, InboundSource
from automation.permissions import require
from automation.senders import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign
from config.errors import ApplicationError
from config.parsers import nul_paths
from config.transitions import lock

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Bureau-Timestamp"
__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "InboundPost",
    "InboundRefused",
    "inbound_event_receive",
    "inbound_signature",
    "inbound_source_save",
]

SOURCE_FIELDS = ("slug", "name", "description", "secret_setting", "is_active")
ADD_SOURCE = ("automation.add_inboundsource",)
CHANGE_SOURCE = ("automation.change_inboundsource",)

_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
# Signs for a source that does not exist or has no secret, so that every 401
# costs the same work (the answer must not tell them apart by its time).
_NO_KEY = "bureau-inbound-no-key"
UNAUTHENTICATED = (
    "The signature does not verify. Sign '<timestamp>.<idempotency key>.<body>' with the "
    f"source's secret (HMAC-SHA256) and send it as {SIGNATURE_HEADER}: sha256=<hex>, with "
    f"{TIMESTAMP_HEADER} and {IDEMPOTENCY_HEADER}."
)


class InboundRefused(ApplicationError):
    """A post refused, and why (``reason``, counted on its source)."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        status: int,
        code: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, extra=extra)
        self.reason = reason
        self.status_code = status


@dataclass(frozen=True)
class InboundPost:
    """A post as it arrived: its headers (None when absent) and its body
    (empty when it was not read: ``content_length`` is over the limit)."""

    body: bytes
    signature: str | None = None
    timestamp: str | None = None
    idempotency_key: str | None = None
    content_length: int = 0


def signed_content(*, timestamp: str, idempotency_key: str, body: bytes) -> bytes:
    return f"{timestamp}.{idempotency_key}.".encode("utf-8", "replace") + body


def inbound_signature(*, secret: str, timestamp: str, idempotency_key: str, body: bytes) -> str:
    """The X-Bureau-Signature-256 value of a post: ``sha256=<hex>``."""
    return sign(
        signed_content(timestamp=timestamp, idempotency_key=idempotency_key, body=body), secret
    )


# --- sources ------------------------------------------------------------------------------


@transaction.atomic
def inbound_source_save(
    *, actor, source: InboundSource | None = None, **fields: Any
) -> InboundSource:
    """Create a source (``source`` None: slug, name and secret_setting at
    least) with its entity, or change one. The slug is fixed once created:
    senders post to its URL and its rules' entity is named after it."""
    unknown = set(fields) - set(SOURCE_FIELDS)
    if unknown:
        raise ValueError(f"inbound_source_save got unknown fields {sorted(unknown)}")
    creating = source is None
    require(actor, ADD_SOURCE if creating else CHANGE_SOURCE, doing="add or change inbound sources")
    if creating:
        source = InboundSource()
    else:
        source = lock(InboundSource, pk=source.pk)
        if "slug" in fields and fields["slug"] != source.slug:
            raise ValidationError(
                {
                    "slug": [
                        "A source's slug is fixed once created: its senders post to its URL "
                        "and its rules' entity is named after it. Add a new source instead."
                    ]
                }
            )
    for key, value in fields.items():
        setattr(source, key, value)
    errors: dict[str, list[str]] = {}
    try:
        source.full_clean(exclude=["entity"])
    except ValidationError as error:
        errors = error.update_error_dict(errors)
    allowed = conf.inbound_secret_sources()
    if source.secret_setting and source.secret_setting not in allowed:
        listed = ", ".join(allowed) or (
            "(none yet: list AUTOMATION_INBOUND_SECRET_<NAME> names in AUTOMATION_INBOUND_SECRETS)"
        )
        errors.setdefault("secret_setting", []).append(
            f"{source.secret_setting[:100]!r} is not an inbound secret; use one of {listed}."
        )
    if creating and not errors.get("slug"):
        label = inbound_label(source.slug)
        if Entity.objects.filter(model_label=label).exists():
            errors.setdefault("slug", []).append(
                f"The entity {label} exists already (a source of that slug was removed?)."
            )
    if errors:
        raise ValidationError(errors)
    if creating:
        ensure_reference_rows()
        label = inbound_label(source.slug)
        source.entity = Entity.objects.create(
            name=label,
            model_label=label,
            entity_type=EntityType.objects.get(name=EntityKind.INBOUND),
            schema_name="",
        )
    source.save()
    transaction.on_commit(invalidate_watch_index)
    return source


# --- posts --------------------------------------------------------------------------------


def _secret(source: InboundSource | None) -> str:
    """The source's secret; empty (with a log line naming the setting, never its
    value) when the setting is not an allowed one or not set."""
    if source is None:
        return ""
    try:
        secret = conf.inbound_secret(source.secret_setting)
    except ValueError:
        logger.warning(
            "inbound source %s: %s is not listed in AUTOMATION_INBOUND_SECRETS; "
            "every post is refused",
            source.slug,
            source.secret_setting[:100],
        )
        return ""
    if not secret:
        logger.warning(
            "inbound source %s: %s is not set; every post is refused",
            source.slug,
            source.secret_setting,
        )
    return secret


# What each refusal answers: HTTP status and error code. An inactive source
# answers as a bad signature does: a sender without the secret learns nothing.
_REFUSAL_ANSWERS: dict[str, tuple[int, str]] = {
    InboundRefusal.TOO_LARGE: (413, "automation.inbound_too_large"),
    InboundRefusal.SIGNATURE: (401, "automation.inbound_signature"),
    InboundRefusal.INACTIVE: (401, "automation.inbound_signature"),
    InboundRefusal.TIMESTAMP: (401, "automation.inbound_timestamp"),
    InboundRefusal.BODY: (400, "automation.inbound_body"),
    InboundRefusal.REPEAT: (409, "automation.inbound_repeat"),
}


def _refuse(
    source: InboundSource | None,
    slug: str,
    reason: str,
    message: str,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> NoReturn:
    """Count the refusal on the source (one UPDATE: concurrent posts lose no
    count), log it in one line, raise it."""
    status, code = _REFUSAL_ANSWERS[reason]
    if source is not None:
        field = InboundSource.counter_field(reason)
        InboundSource.objects.filter(pk=source.pk).update(
            **{field: F(field) + 1}, last_refused_at=now, last_refusal=reason
        )
    logger.warning(
        "inbound post to %s refused: %s (%s)",
        slug[:50],
        reason if source is not None else "unknown source",
        status,
    )
    raise InboundRefused(message, reason=reason, status=status, code=code, extra=extra)


def _signature_ok(source: InboundSource | None, post: InboundPost) -> bool:
    secret = _secret(source)
    expected = inbound_signature(
        secret=secret or _NO_KEY,
        timestamp=post.timestamp or "",
        idempotency_key=post.idempotency_key or "",
        body=post.body,
    )
    given = (post.signature or "").strip().encode("utf-8", "replace")
    return hmac.compare_digest(expected.encode(), given) and bool(secret)


def _timestamp_error(text: str | None, now: datetime) -> str:
    tolerance = conf.inbound_tolerance_seconds()
    if text is None or not _TIMESTAMP.match(text.strip()):
        return f"{TIMESTAMP_HEADER} must be the time of signing in Unix seconds."
    offset = int(text.strip()) - int(now.timestamp())
    if abs(offset) <= tolerance:
        return ""
    side = "ahead of" if offset > 0 else "behind"
    return (
        f"{TIMESTAMP_HEADER} is {abs(offset)} s {side} the server's clock; "
        f"at most {tolerance} s either way is accepted (sign each post when it is sent)."
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _payload(body: bytes) -> tuple[dict[str, Any] | None, str]:
    """The body as a JSON object, or None and why not."""
    try:
        payload = json.loads(body, parse_float=_finite_float, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        return None, f"The body is not JSON: {str(error)[:200]}"
    if not isinstance(payload, dict):
        return None, f"The body must be a JSON object, not {type(payload).__name__}."
    nul = nul_paths(payload)
    if nul:
        return None, f"The NUL character (\\u0000) is not allowed (at {nul[0] or 'a key'})."
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return None, "The body holds a lone surrogate (\\ud800–\\udfff), which is not text."
    return payload, ""


def _record(source: InboundSource, key: str, payload: dict[str, Any]) -> AutomationEvent | None:
    """The post's outbox event, or None when the source already has one for
    ``key`` (the unique index decides, also between concurrent posts)."""
    try:
        with transaction.atomic():
            return record_event(
                entity_id=source.entity_id,
                trigger=Trigger.INBOUND,
                object_pk=key,
                new_values=payload,
                old_values=None,
                changed_fields=[],
            )
    except IntegrityError:
        return None


def inbound_event_receive(
    *, source_slug: str, post: InboundPost, now: datetime | None = None
) -> AutomationEvent:
    """Verify a post (see the module docstring for the scheme and the order
    of the checks) and write its outbox event; ``InboundRefused`` otherwise,
    counted on the source, with nothing written but the count."""
    now = now or timezone.now()
    source = InboundSource.objects.filter(slug=source_slug).first()
    limit = conf.inbound_max_bytes()
    if post.content_length > limit or len(post.body) > limit:
        size = max(post.content_length, len(post.body))
        _refuse(
            source,
            source_slug,
            InboundRefusal.TOO_LARGE,
            f"The body is {size} bytes; the limit is {limit} bytes.",
            now,
        )
    signature_ok = _signature_ok(source, post)
    if source is None or not source.is_active or not signature_ok:
        reason = (
            InboundRefusal.INACTIVE
            if source is not None and not source.is_active
            else InboundRefusal.SIGNATURE
        )
        _refuse(source, source_slug, reason, UNAUTHENTICATED, now)
    # The sender holds the source's secret: from here the answers say what is wrong.
    problem = _timestamp_error(post.timestamp, now)
    if problem:
        _refuse(source, source_slug, InboundRefusal.TIMESTAMP, problem, now)
    key = (post.idempotency_key or "").strip()
    payload, problem = _payload(post.body)
    if not _KEY.match(key):
        problem = f"{IDEMPOTENCY_HEADER} must be 1–100 visible ASCII characters (no spaces)."
    if problem:
        _refuse(source, source_slug, InboundRefusal.BODY, problem, now)
    with transaction.atomic():
        event = _record(source, key, payload)
        if event is not None:
            InboundSource.objects.filter(pk=source.pk).update(
                accepted=F("accepted") + 1, last_accepted_at=now
            )
    if event is None:
        original = (
            AutomationEvent.objects.filter(
                entity_id=source.entity_id, trigger=Trigger.INBOUND, object_pk=key
            )
            .values_list("pk", flat=True)
            .first()
        )
        _refuse(
            source,
            source_slug,
            InboundRefusal.REPEAT,
            f"{IDEMPOTENCY_HEADER} {key!r} was received already, as event {original}; "
            "it is not processed again.",
            now,
            extra={"event": original},
        )
    return event
