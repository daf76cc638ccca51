"""The console's "Needs attention" tiles, above the app list on the admin index.

One tile per problem: a count (or an age) that links to the changelist
filtered to exactly the rows it counted. Computed with a fixed number of
queries whatever the table sizes (one per model, plus four single values
shared with ``/metrics``), and only for what the user may view.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from config.observability import selectors


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    url: str
    needs_attention: bool
    detail: str = ""


@dataclass(frozen=True)
class Attention:
    tiles: list[Tile]

    @property
    def any(self) -> bool:
        return any(tile.needs_attention for tile in self.tiles)


class AttentionListFilter(admin.SimpleListFilter):
    """``?attention=<problem key>`` on a changelist: the rows a tile counted."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [(p.key, p.label) for p in selectors.problems_of(model_admin.model._meta.label)]

    def queryset(self, request, queryset):
        for problem in selectors.problems_of(queryset.model._meta.label):
            if problem.key == self.value():
                return queryset.filter(problem.condition(timezone.now()))
        return queryset


def age_text(seconds: float) -> str:
    """A duration as an on-call person reads it: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _changelist(model_label: str, query: str = "") -> str:
    app_label, model_name = model_label.lower().split(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    return f"{url}?{query}" if query else url


def _may_view(user, model_label: str) -> bool:
    app_label, model_name = model_label.lower().split(".")
    return user.has_perm(f"{app_label}.view_{model_name}")


def _age_tile(
    label: str, at: datetime | None, now: datetime, limit: timedelta, url: str, *, never: str
) -> Tile:
    if at is None:
        return Tile(label, never, url, needs_attention=False)
    age = now - at
    return Tile(label, age_text(age.total_seconds()), url, needs_attention=age > limit)


def attention(*, user, now: datetime | None = None) -> Attention:
    """Every tile ``user`` may see; the ones that need attention first."""
    now = now or timezone.now()
    tiles: list[Tile] = []

    problems = [p for p in selectors.attention_problems() if _may_view(user, p.model)]
    counts = selectors.problem_counts(model_labels=[p.model for p in problems], now=now)
    for problem in problems:
        count = counts[(problem.model, problem.key)]
        query = "&".join(filter(None, [f"attention={problem.key}", problem.also]))
        url = _changelist(problem.model, query)
        tiles.append(Tile(problem.label, str(count), url, needs_attention=count > 0))

    if _may_view(user, "django_q.Failure"):
        failed = selectors.task_results()["failed"]
        url = _changelist("django_q.Failure")
        tiles.append(Tile("Background tasks failed", str(failed), url, needs_attention=failed > 0))

    if _may_view(user, "operations.OperationRun"):
        tiles.append(
            _age_tile(
                "Since the last successful Knox poll",
                selectors.knox_last_successful_poll_at(),
                now,
                timedelta(seconds=settings.CONSOLE_KNOX_POLL_MAX_AGE),
                _changelist(
                    "operations.OperationRun", f"type=approvals.poll_knox&{selectors.ALL_RUNS}"
                ),
                never="no poll yet",
            )
        )

    if _may_view(user, "automation.AutomationEvent"):
        backlog = selectors.outbox_backlog()
        oldest = backlog["oldest"]
        late = oldest is not None and now - oldest > timedelta(
            seconds=settings.CONSOLE_OUTBOX_MAX_AGE
        )
        tiles.append(
            Tile(
                "Outbox events waiting",
                str(backlog["n"]),
                _changelist("automation.AutomationEvent", "status__exact=pending"),
                needs_attention=late,
                detail=f"oldest {age_text((now - oldest).total_seconds())}" if oldest else "",
            )
        )

    if _may_view(user, "scanning.ScanAgentStatus"):
        from scanning import conf

        tiles.append(
            _age_tile(
                "Since the scan agent's last heartbeat",
                selectors.scan_agent_last_heartbeat(),
                now,
                conf.agent_stale_after(),
                _changelist("scanning.ScanAgentStatus"),
                never="never seen",
            )
        )

    # Problems first; within each group the order above (critical alerts before high, ...).
    tiles.sort(key=lambda tile: not tile.needs_attention)
    return Attention(tiles)
