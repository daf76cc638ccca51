"""How the console's lists show a state: a coloured badge, and how long the
row has been in it. One colour per meaning across every app, so red reads
the same on pending actions, deliveries, scan jobs, alerts and runs."""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from config.observability.attention import age_text

RED, AMBER, GREEN, BLUE, GREY = "#ba2121", "#b56a00", "#2e7d32", "#3b6ea5", "#6b6b6b"

# A state's meaning: needs a person (red), waiting or retrying (amber), done
# well (green), under way (blue), ended without effect (grey).
COLOURS = {
    **dict.fromkeys(["failed", "bounced", "critical", "rejected"], RED),
    **dict.fromkeys(
        ["submit_unknown", "retrying", "high", "active", "partially_succeeded", "preview"], AMBER
    ),
    **dict.fromkeys(
        [
            "executed",
            "delivered",
            "sent",
            "committed",
            "succeeded",
            "acknowledged",
            "resolved",
            "approved",
        ],
        GREEN,
    ),
    **dict.fromkeys(
        [
            "pending",
            "queued",
            "ready",
            "scanning",
            "assembling",
            "committing",
            "executing",
            "running",
            "medium",
        ],
        BLUE,
    ),
}


def badge(value: str, label: str | None = None):
    """``value`` (a status or severity) as a coloured badge reading ``label``."""
    return format_html(
        '<span class="state-badge" data-state="{}" style="background:{};color:#fff;'
        'padding:1px 7px;border-radius:9px;white-space:nowrap;font-size:.75rem">{}</span>',
        value,
        COLOURS.get(value, GREY),
        label if label is not None else value,
    )


def age(since: datetime | None, *, now: datetime | None = None) -> str:
    """How long ago ``since`` was, in words an on-call person reads aloud."""
    if since is None:
        return "—"
    return age_text(((now or timezone.now()) - since).total_seconds())


def badge_column(field: str, description: str | None = None):
    """A list column showing ``field`` (a choices field) as a badge, sortable by it."""

    @admin.display(description=description or field, ordering=field)
    def column(obj):
        return badge(getattr(obj, field), getattr(obj, f"get_{field}_display")())

    column.__name__ = f"{field}_badge"
    return column


@admin.display(description="in this state for", ordering="-updated_at")
def in_state_for(obj) -> str:
    """Since the row last changed: for these models, its last change of state."""
    return age(obj.updated_at)
