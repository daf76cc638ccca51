"""Scanning settings, read with defaults (the lead may move them into
config/settings.py; the names stay the same)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def agent_stale_after() -> timedelta:
    """A heartbeat older than this means the agent is lost."""
    return timedelta(seconds=getattr(settings, "SCANNING_AGENT_STALE_AFTER", 120))


def ready_idle_timeout() -> timedelta:
    """A ``ready`` job with no activity for this long is canceled, freeing the scanner."""
    return timedelta(seconds=getattr(settings, "SCANNING_READY_IDLE_TIMEOUT", 30 * 60))


def scan_stall_timeout() -> timedelta:
    """A ``scanning`` job with no progress for this long fails, even if the agent heartbeats."""
    return timedelta(seconds=getattr(settings, "SCANNING_SCAN_STALL_TIMEOUT", 30 * 60))


def max_batch_bytes() -> int:
    return int(getattr(settings, "SCANNING_MAX_BATCH_BYTES", 100 * 1024 * 1024))


def agent_token_file() -> Path:
    """Where ``scanning_create_agent --token-file`` writes and ``scan_agent`` reads by default."""
    default = Path(settings.VAR_DIR) / "scan_agent.token"
    return Path(getattr(settings, "SCANNING_AGENT_TOKEN_FILE", default))


def file_retention() -> timedelta:
    """How long a committed job's batch and merged files are kept after the
    commit; the committed Document's own file is never removed."""
    days = int(getattr(settings, "SCANNING_FILE_RETENTION_DAYS", 30))
    if days < 0:
        raise ImproperlyConfigured(f"SCANNING_FILE_RETENTION_DAYS must be 0 or more, got {days}")
    return timedelta(days=days)
