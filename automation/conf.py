"""Automation settings, read when used (so tests can override them with
pytest-django's ``settings`` fixture). None of them is required."""

from __future__ import annotations

import os
import re
from typing import Any

from django.conf import settings

# A DB integer taken from a rule's config (max_attempts, expires_in_minutes,
# execution_order) is at most this.
MAX_DB_INT = 2**31 - 1


def extra_entity_labels() -> list[str]:
    """``app_label.Model`` labels of the extra models rules may watch
    (AUTOMATION_ENTITIES). Bureau's own apps register theirs from their
    ``ready()`` (automation.registry). A listed model that is not installed is
    reported by automation_sync_entities and ignored, never an error at
    startup."""
    labels: list[str] = []
    for label in getattr(settings, "AUTOMATION_ENTITIES", ()) or ():
        if label not in labels:
            labels.append(label)
    return labels


def max_chain_depth() -> int:
    """Events caused by a rule's own actions carry depth + 1; past this the
    matched rules are recorded as skipped instead of run."""
    return int(getattr(settings, "AUTOMATION_MAX_CHAIN_DEPTH", 5))


def outbox_batch_size() -> int:
    return int(getattr(settings, "AUTOMATION_OUTBOX_BATCH_SIZE", 100))


def outbox_max_batches() -> int:
    """Batches one task call drains before it returns (the schedule picks up the rest)."""
    return int(getattr(settings, "AUTOMATION_OUTBOX_MAX_BATCHES", 50))


def outbox_drainers() -> int:
    """How many drain tasks share a backlog larger than one batch: the task
    that finds it queues helpers up to this many (one per batch waiting), so
    the workers of every cluster drain side by side."""
    return max(1, int(getattr(settings, "AUTOMATION_OUTBOX_DRAINERS", 4)))


def event_max_attempts() -> int:
    return int(getattr(settings, "AUTOMATION_EVENT_MAX_ATTEMPTS", 5))


def rule_cache_seconds() -> float:
    """How long a process trusts its index of watched (entity, trigger) pairs
    before re-reading it; changes made in the same process apply at once."""
    return float(getattr(settings, "AUTOMATION_RULE_CACHE_SECONDS", 2.0))


def delivery_max_attempts() -> int:
    return int(getattr(settings, "AUTOMATION_DELIVERY_MAX_ATTEMPTS", 5))


def delivery_backoff_seconds() -> float:
    """First retry delay; each later one doubles, capped by the maximum below."""
    return float(getattr(settings, "AUTOMATION_DELIVERY_BACKOFF_SECONDS", 30))


def delivery_backoff_max_seconds() -> float:
    return float(getattr(settings, "AUTOMATION_DELIVERY_BACKOFF_MAX_SECONDS", 3600))


def delivery_lease_seconds() -> float:
    """A worker sending a delivery holds it this long; a worker that died
    mid-send releases it when the lease runs out. Keep it above the longest
    send (AUTOMATION_WEBHOOK_TIMEOUT_SECONDS, the mail server's timeout)."""
    return float(getattr(settings, "AUTOMATION_DELIVERY_LEASE_SECONDS", 60))


def delivery_max_abandoned() -> int:
    """How many times a delivery's worker may die mid-send before the delivery
    is failed instead of sent again (a delivery that kills its worker every
    time must not loop forever)."""
    return int(getattr(settings, "AUTOMATION_DELIVERY_MAX_ABANDONED", 3))


def delivery_task_size() -> int:
    """Deliveries one sending task takes: a larger set is split into tasks of
    this many, so that several workers send side by side."""
    return max(1, int(getattr(settings, "AUTOMATION_DELIVERY_TASK_SIZE", 20)))


def webhook_timeout_seconds() -> float:
    return float(getattr(settings, "AUTOMATION_WEBHOOK_TIMEOUT_SECONDS", 10))


DEFAULT_WEBHOOK_SECRET = "AUTOMATION_WEBHOOK_SECRET"
# Only settings named like this can be webhook secrets: a list that names
# SECRET_KEY or KNOX_TOKEN by mistake still cannot hand them to a rule.
_WEBHOOK_SECRET_NAME = re.compile(r"^AUTOMATION_WEBHOOK_SECRET(?:_[A-Z0-9]+)+$")


def listed_webhook_secrets() -> list[Any]:
    return list(getattr(settings, "AUTOMATION_WEBHOOK_SECRETS", None) or ())


def invalid_webhook_secret_names() -> list[str]:
    """Entries of AUTOMATION_WEBHOOK_SECRETS that are not webhook-secret names
    (``manage.py check`` reports them; they are ignored)."""
    return [
        str(name)
        for name in listed_webhook_secrets()
        if not (isinstance(name, str) and _WEBHOOK_SECRET_NAME.match(name))
    ]


def webhook_secret_sources() -> tuple[str, ...]:
    """The settings a rule may sign its webhooks with (``secret_env``):
    AUTOMATION_WEBHOOK_SECRET, the default, and the AUTOMATION_WEBHOOK_SECRET_*
    names listed in AUTOMATION_WEBHOOK_SECRETS."""
    names = [DEFAULT_WEBHOOK_SECRET]
    for name in listed_webhook_secrets():
        if isinstance(name, str) and _WEBHOOK_SECRET_NAME.match(name) and name not in names:
            names.append(name)
    return tuple(names)


def webhook_secret(source: str | None = None) -> str:
    """The HMAC key held by ``source`` (AUTOMATION_WEBHOOK_SECRET when not
    given), from the settings or else the environment; empty when it is not
    set. Never stored in the database. A source that is not one of
    :func:`webhook_secret_sources` is a ``ValueError``."""
    source = source or DEFAULT_WEBHOOK_SECRET
    if source not in webhook_secret_sources():
        raise ValueError(f"{str(source)[:100]!r} is not a webhook secret")
    return getattr(settings, source, "") or os.environ.get(source, "")


def from_email() -> str:
    return getattr(settings, "AUTOMATION_FROM_EMAIL", "") or getattr(
        settings, "DEFAULT_FROM_EMAIL", "bureau@localhost"
    )


# --- inbound webhooks -------------------------------------------------------------------

# Only settings named like this can hold an inbound source's HMAC key: a list
# that names SECRET_KEY, KNOX_TOKEN or an outbound webhook secret by mistake
# still cannot hand it to a source. (Outbound and inbound keys are kept
# apart: a receiver of Bureau's webhooks knows the outbound key, and must not
# be able to post events to Bureau with it.)
_INBOUND_SECRET_NAME = re.compile(r"^AUTOMATION_INBOUND_SECRET(?:_[A-Z0-9]+)+$")


def listed_inbound_secrets() -> list[Any]:
    return list(getattr(settings, "AUTOMATION_INBOUND_SECRETS", None) or ())


def invalid_inbound_secret_names() -> list[str]:
    """Entries of AUTOMATION_INBOUND_SECRETS that are not inbound-secret names
    (``manage.py check`` reports them; they are ignored)."""
    return [
        str(name)
        for name in listed_inbound_secrets()
        if not (isinstance(name, str) and _INBOUND_SECRET_NAME.match(name))
    ]


def inbound_secret_sources() -> tuple[str, ...]:
    """The settings an inbound source may name as its ``secret_setting``: the
    AUTOMATION_INBOUND_SECRET_<NAME> names listed in AUTOMATION_INBOUND_SECRETS."""
    names: list[str] = []
    for name in listed_inbound_secrets():
        if isinstance(name, str) and _INBOUND_SECRET_NAME.match(name) and name not in names:
            names.append(name)
    return tuple(names)


def inbound_secret(source: str) -> str:
    """The HMAC key held by the setting ``source``, from the settings or else
    the environment; empty when it is not set. A name that is not one of
    :func:`inbound_secret_sources` is a ``ValueError``."""
    if source not in inbound_secret_sources():
        raise ValueError(f"{str(source)[:100]!r} is not an inbound secret")
    return getattr(settings, source, "") or os.environ.get(source, "")


def inbound_tolerance_seconds() -> int:
    """How far a post's timestamp may be from now, either way, before it is
    refused (a replay of an old post, or a clock far off)."""
    return int(getattr(settings, "AUTOMATION_INBOUND_TOLERANCE_SECONDS", 300))


def inbound_max_bytes() -> int:
    """The largest body an inbound post may have (a larger one is a 413)."""
    return int(getattr(settings, "AUTOMATION_INBOUND_MAX_BYTES", 262_144))
