"""One way to change state.

Every stateful model declares its allowed moves once, in its app's
``choices.py``, as a :class:`StateMachine`, and names it on the model::

    # scanning/choices.py
    SCAN_JOB_STATES = StateMachine(
        {ScanJobStatus.DRAFT: {ScanJobStatus.QUEUED, ScanJobStatus.CANCELED}, ...},
        subject="Scan job",
        invalid_code="scan_job.invalid_transition",
        audit_model="scanning.ScanJobEvent",
        audit_fk="job",
        reason_field="message",
    )

    # scanning/models.py
    class ScanJob(models.Model):
        state_machine = SCAN_JOB_STATES

Services then change state only through this module:

- :func:`lock` / :func:`lock_many` take the row locks (``select_for_update``
  with ``of=("self",)``, many rows in primary-key order so two workers never
  deadlock) and mark the instances as held; :func:`lock_first` takes the
  next row of a queue (optionally skipping rows others hold);
- :func:`transition` checks the move against the locked row, saves only the
  changed fields (with ``save()``: automation watches some of these models
  through their signals), writes the model's audit row in the same
  transaction, and turns an ``IntegrityError`` from a database invariant into
  a domain error;
- :class:`TransitionBatch` is the same for many rows: moves are checked as
  they are made and written together at the end, each row once, the audit
  rows in one insert (the Knox poller and the outbox worker); rows of a
  model whose saves nobody watches right now (:func:`watch_saves`) are
  written with one ``executemany`` per set of changed fields instead;
- :func:`transition_if` is the lock-free form for hot rows that have no audit
  table (the operation ledger): one conditional ``UPDATE … WHERE status IN
  (the states the move is allowed from)``; :func:`transition_many_if` the same
  for a batch of rows in one statement (the outbox worker);
- :func:`each_or_all` is the "whole batch in one savepoint, then item by item
  when it fails" loop.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from django.apps import apps
from django.db import IntegrityError, models, router, transaction
from django.db.models import Q
from django.utils import timezone

from config.db import update_if_status, update_rows
from config.errors import Conflict, InvalidTransition, NotFound
from operations.sanitize import sanitize_message

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=models.Model)
T = TypeVar("T")
R = TypeVar("R")

# Set on instances read by ``lock``/``lock_many``; ``transition`` insists on it.
_LOCK_MARK = "_bureau_row_locked"


def actor_label(actor: Any = None) -> str:
    """Who made a change, as the audit rows spell it: a user's username, an
    object's own ``actor_label`` (the scan agent: ``agent:<name>``), else
    ``system``."""
    if actor is None:
        return "system"
    label = getattr(actor, "actor_label", None)
    if label:
        return str(label)[:150]
    return actor.get_username()[:150]


def as_user(actor: Any):
    """The user to store in an audit row's ``actor`` column (None for agents and the system)."""
    return actor if getattr(actor, "is_authenticated", False) else None


@dataclass(frozen=True)
class StateMachine:
    """The allowed moves of one status field. ``None`` as a source is the
    creation of the row; a state with no entry is terminal."""

    moves: Mapping[str | None, Iterable[str]]
    subject: str
    invalid_code: str
    field: str = "status"
    # Audit: a row of ``audit_model`` per move, pointing at the object through
    # ``audit_fk``, with from_status, to_status, actor, actor_name and the
    # reason in ``reason_field``. None: the model keeps its own record.
    audit_model: str | None = None
    audit_fk: str = ""
    reason_field: str = "reason"
    reason_limit: int = 1000
    _allowed: dict = dataclasses.field(init=False, repr=False, compare=False)
    _sources: dict = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        allowed = {source: frozenset(targets) for source, targets in self.moves.items()}
        sources: dict[str, list[str]] = {}
        for source, targets in allowed.items():
            for target in targets:
                if source is not None:
                    sources.setdefault(target, []).append(source)
        object.__setattr__(self, "_allowed", allowed)
        object.__setattr__(self, "_sources", {t: tuple(sorted(s)) for t, s in sources.items()})

    def allows(self, current: str | None, target: str) -> bool:
        return target in self._allowed.get(current, ())

    def sources(self, target: str) -> tuple[str, ...]:
        """The states ``target`` may be reached from (for a conditional UPDATE)."""
        return self._sources.get(target, ())

    def refuse(self, obj: models.Model, target: str, *, current: str | None = None, code=None):
        return InvalidTransition(
            subject=f"{self.subject} {obj.pk}",
            current=current if current is not None else getattr(obj, self.field),
            target=target,
            code=code or self.invalid_code,
        )

    def check(self, obj: models.Model, target: str, *, code: str | None = None) -> None:
        if not self.allows(getattr(obj, self.field), target):
            raise self.refuse(obj, target, code=code)

    def audit_row(
        self, obj, *, from_state, to_state, actor, reason: str, extra, sanitize=None
    ) -> models.Model | None:
        """The audit row of a move (not saved). ``sanitize`` cleans the reason
        (``sanitize_message`` by default; a batch passes its memo of it)."""
        if self.audit_model is None:
            return None
        sanitize = sanitize or sanitize_message
        model = apps.get_model(self.audit_model)
        values = {
            self.audit_fk: obj,
            "from_status": from_state or "",
            "to_status": to_state,
            "actor": as_user(actor),
            "actor_name": actor_label(actor),
            self.reason_field: sanitize(reason, limit=self.reason_limit) if reason else "",
            **(extra or {}),
        }
        return model(**values)


def machine_of(obj_or_model) -> StateMachine:
    machine = getattr(obj_or_model, "state_machine", None)
    if machine is None:
        raise TypeError(f"{obj_or_model!r} declares no state_machine")
    return machine


# --- locks ------------------------------------------------------------------------------


def _for_update(queryset: models.QuerySet, *, skip_locked: bool = False) -> models.QuerySet:
    # ``of=("self",)``: with select_related, lock only the row we change, not
    # the joined ones (PostgreSQL would lock them all and invite deadlocks).
    return queryset.select_for_update(of=("self",), skip_locked=skip_locked)


def mark_locked(obj: M) -> M:
    setattr(obj, _LOCK_MARK, True)
    return obj


def lock(
    queryset: models.QuerySet[M] | type[M],
    *,
    not_found: Callable[[], Exception] | None = None,
    **lookup,
) -> M:
    """The one row matching ``lookup``, locked until the transaction ends.
    Must run inside ``transaction.atomic``. A missing row raises
    ``not_found()`` (a ``NotFound`` naming the lookup by default)."""
    _require_atomic(queryset)
    if isinstance(queryset, type):
        queryset = queryset._default_manager.all()
    obj = _for_update(queryset).filter(**lookup).first()
    if obj is None:
        if not_found is not None:
            raise not_found()
        described = ", ".join(f"{k.replace('pk', 'id')} {v}" for k, v in lookup.items())
        raise NotFound(f"No {queryset.model._meta.verbose_name} with {described}.")
    return mark_locked(obj)


def lock_many(
    queryset: models.QuerySet[M] | type[M],
    pks: Iterable[Any] | None = None,
    *,
    skip_locked: bool = False,
    limit: int | None = None,
) -> list[M]:
    """Rows locked in primary-key order (a fixed lock order: two workers
    locking overlapping sets never deadlock). ``skip_locked`` leaves rows
    another transaction holds (PostgreSQL; SQLite has one writer anyway);
    ``limit`` takes the first so many (a worker's batch: with ``skip_locked``,
    two workers take two batches)."""
    _require_atomic(queryset)
    if isinstance(queryset, type):
        queryset = queryset._default_manager.all()
    if pks is not None:
        queryset = queryset.filter(pk__in=list(pks))
    rows = _for_update(queryset, skip_locked=skip_locked).order_by("pk")
    if limit is not None:
        rows = rows[:limit]
    return [mark_locked(obj) for obj in rows]


def lock_first(queryset: models.QuerySet[M], *, skip_locked: bool = False) -> M | None:
    """The first row of ``queryset`` in its own order, locked, or None when
    there is none. ``skip_locked`` passes over rows another transaction
    holds, so workers taking "the next one" each get a different row instead
    of queueing behind the same one (PostgreSQL; SQLite has one writer)."""
    _require_atomic(queryset)
    obj = _for_update(queryset, skip_locked=skip_locked).first()
    return None if obj is None else mark_locked(obj)


def _require_atomic(queryset_or_model) -> None:
    model = queryset_or_model if isinstance(queryset_or_model, type) else queryset_or_model.model
    if not transaction.get_connection(router.db_for_write(model)).in_atomic_block:
        raise RuntimeError(
            "row locks last until the transaction ends: call inside transaction.atomic"
        )


def _require_locked(obj: models.Model) -> None:
    if not getattr(obj, _LOCK_MARK, False):
        raise RuntimeError(
            f"{type(obj).__name__} {obj.pk} must be read with lock()/lock_many() before it moves"
        )
    _require_atomic(type(obj))


# --- who watches saves -----------------------------------------------------------------

# Predicates saying whether a model's saves are watched right now (automation
# registers one: "an active rule watches this model's updates"). A batch saves
# a watched model's rows one ``save()`` each, so its signals go; another
# model's rows are written in bulk.
_save_watchers: list[Callable[[type[models.Model]], bool]] = []

# The tables a batch is writing in bulk at this moment because nobody watches
# their saves (tests/watched_writes.py reads it: such a write misses no event).
unwatched_bulk_write: ContextVar[frozenset[str]] = ContextVar(
    "unwatched_bulk_write", default=frozenset()
)


def watch_saves(predicate: Callable[[type[models.Model]], bool]) -> None:
    """Register ``predicate(model) -> bool``: True when something acts on the
    model's ``save()`` signals now, so batches must not write it in bulk."""
    if predicate not in _save_watchers:
        _save_watchers.append(predicate)


def _saves_watched(model: type[models.Model]) -> bool:
    return any(predicate(model) for predicate in _save_watchers)


# --- moves --------------------------------------------------------------------------------


@dataclass
class _Pending:
    obj: models.Model
    fields: set[str] = dataclasses.field(default_factory=set)
    before: dict[str, Any] = dataclasses.field(default_factory=dict)


class TransitionBatch:
    """Moves of locked rows, checked as they are made and written together by
    :meth:`flush` (each row once, with ``save(update_fields=…)``, all in one
    savepoint; the audit rows with one ``bulk_create``). Use it as a context manager inside
    ``transaction.atomic``: the block's end flushes, an exception writes
    nothing. Rows that are not state machines but change with the moves (the
    approval log beside a pending action) are written by :meth:`save_fields`
    in the same flush, one ``executemany`` per model."""

    def __init__(self):
        self._rows: dict[int, _Pending] = {}
        self._extra: dict[int, tuple[models.Model, set[str]]] = {}
        self._audit: list[models.Model] = []
        # A poll moves thousands of rows with a handful of reasons: each
        # sanitised once per batch (the configured secrets cannot change in it).
        self._reasons: dict[tuple[str, int], str] = {}

    def _sanitize(self, reason: str, *, limit: int) -> str:
        key = (reason, limit)
        if key not in self._reasons:
            self._reasons[key] = sanitize_message(reason, limit=limit)
        return self._reasons[key]

    def __enter__(self) -> TransitionBatch:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.flush()
        return False

    def move(
        self,
        obj: M,
        to: str,
        *,
        actor: Any = None,
        reason: str = "",
        code: str | None = None,
        audit: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> M:
        """Move ``obj`` to ``to`` in memory (checked now, written at flush),
        setting ``fields`` beside the status. ``code`` overrides the
        refusal's error code; ``audit`` adds columns to the audit row."""
        _require_locked(obj)
        machine = machine_of(obj)
        current = getattr(obj, machine.field)
        machine.check(obj, to, code=code)
        pending = self._rows.setdefault(id(obj), _Pending(obj))
        for name in (machine.field, *fields):
            pending.before.setdefault(name, getattr(obj, name))
        setattr(obj, machine.field, to)
        for name, value in fields.items():
            setattr(obj, name, value)
        pending.fields.update((machine.field, *fields))
        row = machine.audit_row(
            obj,
            from_state=current,
            to_state=to,
            actor=actor,
            reason=reason,
            extra=audit,
            sanitize=self._sanitize,
        )
        if row is not None:
            self._audit.append(row)
        return obj

    def save_fields(self, obj: models.Model, *fields: str) -> None:
        """Write ``fields`` of ``obj`` (not a state change) with this batch."""
        _obj, names = self._extra.setdefault(id(obj), (obj, set()))
        names.update(fields)

    def moved(self, obj: models.Model) -> bool:
        return id(obj) in self._rows

    def flush(self) -> None:
        rows, self._rows = list(self._rows.values()), {}
        audit, self._audit = self._audit, []
        extra, self._extra = list(self._extra.values()), {}
        by_model: dict[type, list[tuple[models.Model, set[str]]]] = {}
        for obj, names in extra:
            by_model.setdefault(type(obj), []).append((obj, names))
        for items in by_model.values():
            names = sorted(set().union(*(n for _o, n in items)))
            update_rows([o for o, _n in items], names)
        _save_all(rows)
        if audit:
            by_audit: dict[type, list[models.Model]] = {}
            for row in audit:
                by_audit.setdefault(type(row), []).append(row)
            for model, items in by_audit.items():
                model.objects.bulk_create(items)


def _save_all(rows: list[_Pending]) -> None:
    """Save the moved rows in one savepoint (a savepoint each would cost two
    round trips a row: the Knox poll moves a thousand). Rows of a model whose
    saves nobody watches go with one ``executemany`` per set of changed fields;
    the others one ``save()`` each, for their signals. When the database
    refuses one, that savepoint is undone and the rows are saved again, one
    savepoint each, to find which and say why."""
    if len(rows) > 1:
        try:
            with transaction.atomic():
                _write_together(rows)
            return
        except IntegrityError:
            pass
    for pending in rows:
        _save_checked(pending)


def _write_together(rows: list[_Pending]) -> None:
    groups: dict[tuple[type, tuple[str, ...]], list[models.Model]] = {}
    watched: dict[type, bool] = {}
    for pending in rows:
        model = type(pending.obj)
        if model not in watched:
            watched[model] = _saves_watched(model)
        if watched[model]:
            _save(pending)
            continue
        obj = pending.obj
        names = set(pending.fields)
        for field in obj._meta.concrete_fields:
            if getattr(field, "auto_now", False):
                field.pre_save(obj, add=False)  # sets it, as save() would
                names.add(field.name)
        groups.setdefault((model, tuple(sorted(names))), []).append(obj)
    for (model, names), objs in groups.items():
        token = unwatched_bulk_write.set(unwatched_bulk_write.get() | {model._meta.db_table})
        try:
            update_rows(objs, names)
        finally:
            unwatched_bulk_write.reset(token)


def _save(pending: _Pending) -> None:
    obj = pending.obj
    names = set(pending.fields)
    names.update(f.name for f in obj._meta.concrete_fields if getattr(f, "auto_now", False))
    obj.save(update_fields=sorted(names))


def _save_checked(pending: _Pending) -> None:
    obj = pending.obj
    try:
        with transaction.atomic():  # a savepoint: a database invariant may say no
            _save(pending)
    except IntegrityError as error:
        machine = machine_of(obj)
        target = getattr(obj, machine.field)
        for name, value in pending.before.items():
            setattr(obj, name, value)
        refused = getattr(obj, "transition_refused", None)
        mapped = refused(target, error) if refused is not None else None
        raise mapped or Conflict(
            f"{machine.subject} {obj.pk} cannot become {target}: "
            "it would break a rule the database keeps.",
            code=f"{machine.invalid_code.rsplit('.', 1)[0]}.constraint",
            extra={"current_state": getattr(obj, machine.field), "requested_state": target},
        ) from error


def transition(
    obj: M,
    to: str,
    *,
    actor: Any = None,
    reason: str = "",
    code: str | None = None,
    audit: Mapping[str, Any] | None = None,
    **fields: Any,
) -> M:
    """Move one locked row to ``to`` now: check, save the changed fields,
    write the audit row (see :class:`TransitionBatch`)."""
    with TransitionBatch() as batch:
        batch.move(obj, to, actor=actor, reason=reason, code=code, audit=audit, **fields)
    return obj


def transition_if(obj: M, to: str, *, guard: Q | None = None, **fields: Any) -> M:
    """The lock-free form: one ``UPDATE … WHERE pk = … AND status IN (the
    states that may move to ``to``)`` (and ``guard``, when given). For hot
    rows that keep their own record and have no audit table (the ledger).
    Raises the machine's ``InvalidTransition`` with the state the row has now
    when the row was not in a state the move is allowed from."""
    machine = machine_of(obj)
    values = {machine.field: to, **fields}
    now = timezone.now()
    values.update(
        {
            f.name: now
            for f in obj._meta.concrete_fields
            if getattr(f, "auto_now", False) and f.name not in values
        }
    )
    sources = machine.sources(to)
    if guard is None:
        updated = update_if_status(obj, values, status_in=sources)
    else:
        updated = (
            type(obj)
            ._default_manager.filter(guard, pk=obj.pk, **{f"{machine.field}__in": sources})
            .update(**values)
        )
    if not updated:
        current = (
            type(obj)
            ._default_manager.filter(pk=obj.pk)
            .values_list(machine.field, flat=True)
            .first()
        )
        raise machine.refuse(obj, to, current=current or "missing")
    for name, value in values.items():
        setattr(obj, name, value)
    return obj


def transition_many_if(objs: Sequence[M], to: str, **fields: Any) -> int:
    """The lock-free form for a batch of rows of one model (the outbox worker
    marking its batch processed): one ``UPDATE … WHERE pk IN (…) AND status
    IN (the states that may move to ``to``)``. ``fields`` may be expressions
    (``F("attempts") + 1``). Raises the machine's ``InvalidTransition`` for a
    row that did not move (the whole UPDATE is then the caller's to undo)."""
    if not objs:
        return 0
    model = type(objs[0])
    machine = machine_of(model)
    values = {machine.field: to, **fields}
    now = timezone.now()
    values.update(
        {
            f.name: now
            for f in model._meta.concrete_fields
            if getattr(f, "auto_now", False) and f.name not in values
        }
    )
    pks = [obj.pk for obj in objs]
    updated = model._default_manager.filter(
        pk__in=pks, **{f"{machine.field}__in": machine.sources(to)}
    ).update(**values)
    if updated != len(set(pks)):
        now_in = dict(model._default_manager.filter(pk__in=pks).values_list("pk", machine.field))
        stuck = next((obj for obj in objs if now_in.get(obj.pk) != to), objs[0])
        raise machine.refuse(stuck, to, current=now_in.get(stuck.pk, "missing"))
    for obj in objs:
        setattr(obj, machine.field, to)
    return updated


# --- batches with a fallback ----------------------------------------------------------------


def each_or_all(
    items: Sequence[T],
    *,
    together: Callable[[Sequence[T]], list[R]],
    alone: Callable[[T], R],
    failed: Callable[[T, Exception], None],
    what: str = "item",
) -> list[R]:
    """Run ``together(items)`` in one savepoint; if it raises, undo it and run
    ``alone(item)`` for each, each in its own savepoint, handing an item that
    raises to ``failed`` — one bad item never holds up the others, and the
    common case costs one savepoint, not one per item."""
    try:
        with transaction.atomic():
            return together(items)
    except Exception:  # noqa: BLE001 - redone item by item below
        logger.warning("a %s in a batch of %s failed; retrying them one by one", what, len(items))
    results: list[R] = []
    for item in items:
        try:
            with transaction.atomic():
                results.append(alone(item))
        except Exception as error:  # noqa: BLE001 - one item must not stop the rest
            failed(item, error)
    return results
