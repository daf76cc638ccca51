"""The one registry of Bureau's django-q2 schedules.

Apps register their schedules from ``AppConfig.ready()`` (in memory only);
``manage.py sync_schedules`` writes them to the database after ``migrate``.
Never create Schedule rows in ``ready()``: it runs before migrations and for
every management command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

# Schedules whose name starts with this are Bureau's: sync may update or prune
# them. Anything else in the table belongs to an operator and is left alone.
OWNED_PREFIX = "bureau:"


@dataclass(frozen=True)
class ScheduleSpec:
    key: str
    func: str
    minutes: int | None = None
    cron: str | None = None

    def __post_init__(self):
        if (self.minutes is None) == (self.cron is None):
            raise ValueError(f"schedule {self.key!r} needs exactly one of minutes or cron")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ValueError(f"schedule {self.key!r} has an invalid cron expression {self.cron!r}")
        if self.minutes is not None and self.minutes < 1:
            raise ValueError(f"schedule {self.key!r} must run at least every minute")

    @property
    def name(self) -> str:
        return f"{OWNED_PREFIX}{self.key}"

    def fields(self) -> dict:
        if self.cron is not None:
            return {
                "func": self.func,
                "schedule_type": Schedule.CRON,
                "cron": self.cron,
                "minutes": None,
                "repeats": -1,
            }
        return {
            "func": self.func,
            "schedule_type": Schedule.MINUTES,
            "minutes": self.minutes,
            "cron": None,
            "repeats": -1,
        }

    def next_run(self, now: datetime) -> datetime:
        if self.cron is not None:
            return croniter(self.cron, timezone.localtime(now)).get_next(datetime)
        return now + timedelta(minutes=self.minutes)


class ScheduleRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, ScheduleSpec] = {}

    def register(
        self, key: str, func: str, *, minutes: int | None = None, cron: str | None = None
    ) -> ScheduleSpec:
        spec = ScheduleSpec(key=key, func=func, minutes=minutes, cron=cron)
        existing = self._specs.get(key)
        if existing is not None and existing != spec:
            raise ValueError(f"schedule {key!r} is already registered differently")
        self._specs[key] = spec
        return spec

    def unregister(self, key: str) -> None:
        self._specs.pop(key, None)

    def __iter__(self):
        return iter(sorted(self._specs.values(), key=lambda s: s.key))


schedule_registry = ScheduleRegistry()


@transaction.atomic
def sync_schedules(*, now: datetime | None = None) -> dict[str, int]:
    """Make the Schedule table match the registry. Idempotent: an unchanged
    schedule keeps its next_run; a new or changed one gets an explicit one."""
    now = now or timezone.now()
    counts = {"created": 0, "updated": 0, "unchanged": 0, "pruned": 0}
    wanted = {spec.name: spec for spec in schedule_registry}
    for name, spec in wanted.items():
        rows = list(Schedule.objects.select_for_update().filter(name=name).order_by("pk"))
        for extra in rows[1:]:  # a copy made by hand in the admin
            extra.delete()
            counts["pruned"] += 1
        fields = spec.fields()
        if not rows:
            Schedule.objects.create(name=name, next_run=spec.next_run(now), **fields)
            counts["created"] += 1
            continue
        row = rows[0]
        if all(getattr(row, field) == value for field, value in fields.items()) and row.next_run:
            counts["unchanged"] += 1
            continue
        for field, value in fields.items():
            setattr(row, field, value)
        row.next_run = spec.next_run(now)
        row.save()
        counts["updated"] += 1
    stale = Schedule.objects.filter(name__startswith=OWNED_PREFIX).exclude(name__in=wanted)
    counts["pruned"] += stale.count()
    stale.delete()
    return counts
