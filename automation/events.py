"""Turning model changes into outbox rows.

pre_save reads the row as it is in the database (only for models and
triggers some active rule watches), post_save / post_delete write an
``AutomationEvent`` in the same transaction as the change, and ask for the
outbox to be processed once the transaction commits. A rolled-back change
takes its event with it; the on-commit hook is only a nudge: the drain
schedule processes whatever a nudge missed.

Events come from these signals only: a ``QuerySet.update()`` or a bulk write
on a watched model sends none, so services write watched models with
``save()`` (tests/watched_writes.py fails any test in which one does not).
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from contextvars import ContextVar
from dataclasses import dataclass

from asgiref.local import Local
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django_q.tasks import async_task

from automation.choices import Trigger
from automation.entities import fetch_snapshot, snapshot, watch_index
from automation.models import AutomationEvent

logger = logging.getLogger(__name__)

_OLD_ATTR = "_automation_old_values"


@dataclass(frozen=True)
class ChainContext:
    depth: int
    execution_id: int | None


# Set while a rule's actions run: changes they make become events one level deeper.
_chain: ContextVar[ChainContext | None] = ContextVar("automation_chain", default=None)


@contextlib.contextmanager
def chain_context(*, depth: int, execution_id: int | None):
    token = _chain.set(ChainContext(depth=depth, execution_id=execution_id))
    try:
        yield
    finally:
        _chain.reset(token)


def _on_pre_save(sender, instance, raw=False, **kwargs):
    if raw or instance.pk is None or instance._state.adding:
        return
    if watch_index.entity_for(sender._meta.label, Trigger.ON_UPDATE) is None:
        return
    instance.__dict__[_OLD_ATTR] = fetch_snapshot(sender, instance.pk)


def _on_post_save(sender, instance, created, raw=False, **kwargs):
    old = instance.__dict__.pop(_OLD_ATTR, None)
    if raw:
        return
    trigger = Trigger.ON_CREATE if created else Trigger.ON_UPDATE
    entity_id = watch_index.entity_for(sender._meta.label, trigger)
    if entity_id is None:
        return
    new = snapshot(instance)
    changed = sorted(k for k in new if old is not None and old.get(k) != new[k])
    record_event(
        entity_id=entity_id,
        trigger=trigger,
        object_pk=instance.pk,
        new_values=new,
        old_values=old if not created else None,
        changed_fields=changed,
    )


def _on_post_delete(sender, instance, **kwargs):
    entity_id = watch_index.entity_for(sender._meta.label, Trigger.ON_DELETE)
    if entity_id is None:
        return
    record_event(
        entity_id=entity_id,
        trigger=Trigger.ON_DELETE,
        object_pk=instance.pk,
        new_values=None,
        old_values=snapshot(instance),
        changed_fields=[],
    )


def record_event(*, entity_id, trigger, object_pk, new_values, old_values, changed_fields):
    chain = _chain.get()
    event = AutomationEvent.objects.create(
        entity_id=entity_id,
        trigger=trigger,
        object_pk=str(object_pk),
        new_values=new_values,
        old_values=old_values,
        changed_fields=changed_fields,
        depth=chain.depth + 1 if chain else 0,
        caused_by_id=chain.execution_id if chain else None,
    )
    request_outbox_processing()
    return event


def _kick_outbox() -> None:
    try:
        async_task("automation.tasks.process_outbox_task", task_name="automation.process_outbox")
    except Exception:  # noqa: BLE001 - the drain schedule will pick the events up
        logger.exception("could not queue outbox processing; the drain schedule will")


class _OutboxNudge:
    """The on-commit hook that queues one processing task for a transaction."""

    __slots__ = ("ran", "__weakref__")

    def __init__(self) -> None:
        self.ran = False

    def __call__(self) -> None:
        self.ran = True
        _kick_outbox()


# Per connection (thread or async context, as Django's connections are): a
# weak reference to the last nudge registered. Django holds a registered hook
# until its transaction commits (then runs it) or rolls back, and drops it
# with a rolled-back savepoint; so while the nudge is alive and has not run,
# the open transaction will queue the task, and a later event needs no hook.
_pending = Local()


def request_outbox_processing() -> None:
    """Queue one processing task when the current transaction commits (one
    per transaction, however many events it wrote)."""
    ref = getattr(_pending, "nudge", None)
    nudge = ref() if ref is not None else None
    if nudge is not None and not nudge.ran:
        return
    nudge = _OutboxNudge()
    _pending.nudge = weakref.ref(nudge)
    transaction.on_commit(nudge, robust=True)


def connect_signals(models) -> None:
    for model in models:
        uid = f"automation:{model._meta.label}"
        pre_save.connect(_on_pre_save, sender=model, dispatch_uid=f"{uid}:pre_save")
        post_save.connect(_on_post_save, sender=model, dispatch_uid=f"{uid}:post_save")
        post_delete.connect(_on_post_delete, sender=model, dispatch_uid=f"{uid}:post_delete")
