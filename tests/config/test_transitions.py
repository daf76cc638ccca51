"""The one state-change primitive (config/transitions.py), exercised on the
ledger's OperationRun. The apps' own tests cover their machines and audit rows."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config import transitions
from config.errors import Conflict, InvalidTransition, NotFound
from config.transitions import (
    StateMachine,
    TransitionBatch,
    actor_label,
    each_or_all,
    lock,
    lock_first,
    lock_many,
    transition,
    transition_if,
    transition_many_if,
)
from operations.choices import RUN_STATES, RunOutcome, RunStatus
from operations.models import OperationRun
from tests.conftest import on_postgres
from tests.operations.factories import OperationRunFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def _completed_run(**fields) -> OperationRun:
    return OperationRunFactory(
        status=RunStatus.COMPLETED,
        outcome=RunOutcome.SUCCEEDED,
        completed_at=timezone.now(),
        **fields,
    )


def test_a_machine_knows_its_moves_and_where_a_state_is_reached_from():
    assert RUN_STATES.allows(RunStatus.QUEUED, RunStatus.RUNNING)
    assert not RUN_STATES.allows(RunStatus.COMPLETED, RunStatus.RUNNING)
    assert RUN_STATES.allows(None, RunStatus.QUEUED)
    assert RUN_STATES.sources(RunStatus.COMPLETED) == (RunStatus.QUEUED, RunStatus.RUNNING)
    assert RUN_STATES.sources(RunStatus.QUEUED) == ()


def test_the_conditional_form_moves_an_allowed_row_in_one_statement():
    run = OperationRunFactory(status=RunStatus.QUEUED)

    with CaptureQueriesContext(connection) as queries:
        transition_if(run, RunStatus.RUNNING, outcome=RunOutcome.PENDING)

    assert len(queries) == 1
    stored = OperationRun.objects.get(pk=run.pk)
    assert (stored.status, run.status) == (RunStatus.RUNNING, RunStatus.RUNNING)
    assert stored.updated_at == run.updated_at  # auto_now kept in step


def test_the_conditional_form_refuses_with_the_state_the_row_has_now():
    # given: our copy says queued, the row was completed meanwhile
    run = OperationRunFactory(status=RunStatus.QUEUED)
    OperationRun.objects.filter(pk=run.pk).update(
        status=RunStatus.COMPLETED, outcome=RunOutcome.SUCCEEDED, completed_at=timezone.now()
    )

    with pytest.raises(InvalidTransition) as refused:
        transition_if(run, RunStatus.RUNNING)

    assert refused.value.code == "operation.invalid_transition"
    assert refused.value.current == RunStatus.COMPLETED
    assert run.status == RunStatus.QUEUED  # our copy is left as it was


def test_the_batched_conditional_form_moves_many_rows_in_one_statement():
    from django.db.models import F

    runs = [OperationRunFactory(status=RunStatus.QUEUED, initiator_name="x") for _ in range(3)]

    with CaptureQueriesContext(connection) as queries:
        moved = transition_many_if(runs, RunStatus.RUNNING, initiator_name=F("type"))

    assert moved == 3 and len(queries) == 1
    assert [r.status for r in runs] == [RunStatus.RUNNING] * 3
    stored = OperationRun.objects.filter(pk__in=[r.pk for r in runs])
    assert {(r.status, r.initiator_name == r.type) for r in stored} == {(RunStatus.RUNNING, True)}


def test_the_batched_conditional_form_names_a_row_that_could_not_move():
    queued, done = OperationRunFactory(status=RunStatus.QUEUED), _completed_run()

    with pytest.raises(InvalidTransition) as refused, transaction.atomic():
        transition_many_if([queued, done], RunStatus.RUNNING)

    assert (refused.value.current, refused.value.code) == (
        RunStatus.COMPLETED,
        "operation.invalid_transition",
    )
    assert str(refused.value.message).startswith(f"Operation run {done.pk} is completed")
    assert OperationRun.objects.get(pk=queued.pk).status == RunStatus.QUEUED  # undone with it


def test_a_guard_narrows_the_conditional_move():
    from django.db.models import Q

    run = OperationRunFactory(status=RunStatus.QUEUED, initiator_name="a")

    with pytest.raises(InvalidTransition):
        transition_if(run, RunStatus.RUNNING, guard=Q(initiator_name="b"))
    transition_if(run, RunStatus.RUNNING, guard=Q(initiator_name="a"))

    assert OperationRun.objects.get(pk=run.pk).status == RunStatus.RUNNING


@pytest.mark.django_db(transaction=True)
def test_a_locked_move_needs_a_transaction_and_a_row_read_with_lock():
    run = OperationRunFactory(status=RunStatus.QUEUED)

    with pytest.raises(RuntimeError, match="lock"), transaction.atomic():
        transition(OperationRun.objects.get(pk=run.pk), RunStatus.RUNNING)
    with pytest.raises(RuntimeError, match="transaction.atomic"):
        lock(OperationRun, pk=run.pk)

    assert OperationRun.objects.get(pk=run.pk).status == RunStatus.QUEUED


def test_a_locked_move_saves_only_the_fields_it_changes():
    # given: another writer changed a column after we read nothing yet
    run = OperationRunFactory(status=RunStatus.QUEUED, initiator_name="before")

    with transaction.atomic():
        locked = lock(OperationRun, pk=run.pk)
        OperationRun.objects.filter(pk=run.pk).update(initiator_name="written meanwhile")
        transition(locked, RunStatus.RUNNING, outcome=RunOutcome.PENDING)

    stored = OperationRun.objects.get(pk=run.pk)
    assert stored.status == RunStatus.RUNNING
    assert stored.initiator_name == "written meanwhile"


def test_an_illegal_locked_move_raises_the_machines_error_and_writes_nothing():
    run = _completed_run()

    with pytest.raises(InvalidTransition) as refused, transaction.atomic():
        transition(lock(OperationRun, pk=run.pk), RunStatus.RUNNING, code="test.refused")

    assert (refused.value.code, refused.value.current) == ("test.refused", RunStatus.COMPLETED)
    assert OperationRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED


def test_a_missing_row_is_not_found():
    with pytest.raises(NotFound), transaction.atomic():
        lock(OperationRun, pk=10**9)
    with pytest.raises(LookupError), transaction.atomic():
        lock(OperationRun, not_found=lambda: LookupError("gone"), pk=10**9)


def test_a_database_invariant_that_says_no_becomes_a_conflict(monkeypatch):
    # given: a machine that (wrongly) lets a completed run run again, and an
    # active run with the same identity: the partial unique index refuses
    monkeypatch.setattr(
        OperationRun,
        "state_machine",
        StateMachine(
            {RunStatus.COMPLETED: {RunStatus.RUNNING}},
            subject="Operation run",
            invalid_code="operation.invalid_transition",
        ),
    )
    workspace = WorkspaceFactory()
    OperationRunFactory(workspace=workspace, run_identity_hash="a" * 64, status=RunStatus.RUNNING)
    done = _completed_run(workspace=workspace, run_identity_hash="a" * 64)

    with transaction.atomic():
        locked = lock(OperationRun, pk=done.pk)
        with pytest.raises(Conflict) as refused:
            transition(locked, RunStatus.RUNNING)
        # the transaction is still usable, and the instance is as it was
        assert OperationRun.objects.filter(pk=done.pk).exists()

    assert refused.value.code == "operation.constraint"
    assert refused.value.extra["current_state"] == RunStatus.COMPLETED
    assert locked.status == RunStatus.COMPLETED


def test_a_batch_writes_each_row_once_however_often_it_moved():
    runs = [OperationRunFactory(status=RunStatus.QUEUED) for _ in range(3)]

    with transaction.atomic():
        locked = lock_many(OperationRun, [r.pk for r in runs])
        with CaptureQueriesContext(connection) as queries, TransitionBatch() as batch:
            for run in locked:
                batch.move(run, RunStatus.RUNNING)
                batch.move(
                    run,
                    RunStatus.COMPLETED,
                    outcome=RunOutcome.SUCCEEDED,
                    completed_at=timezone.now(),
                )
            assert len(queries) == 0  # nothing written before the flush

    # then: nobody watches runs' saves, so one statement carries the three rows
    # (UPDATE … FROM unnest on PostgreSQL, one executemany elsewhere)
    updates = [q["sql"] for q in queries.captured_queries if "UPDATE" in q["sql"]]
    assert len(updates) == 1
    if connection.vendor == "postgresql":
        assert "unnest" in updates[0]
    else:
        assert updates[0].startswith("3 times: UPDATE")
    assert set(OperationRun.objects.values_list("status", "outcome")) == {
        (RunStatus.COMPLETED, RunOutcome.SUCCEEDED)
    }


def test_a_batch_written_in_bulk_still_stamps_auto_now_fields():
    runs = [OperationRunFactory(status=RunStatus.QUEUED) for _ in range(2)]
    OperationRun.objects.filter(pk__in=[r.pk for r in runs]).update(
        updated_at=timezone.now() - timedelta(days=1)
    )
    started = timezone.now()

    with transaction.atomic():
        locked = lock_many(OperationRun, [r.pk for r in runs])
        with TransitionBatch() as batch:
            for run in locked:
                batch.move(run, RunStatus.RUNNING)

    assert all(run.updated_at >= started for run in OperationRun.objects.all())


def test_a_batch_saves_rows_whose_saves_are_watched_one_by_one_with_their_signals(monkeypatch):
    # given: something acts on runs' save signals (automation does when a rule
    # watches a model's updates)
    monkeypatch.setattr(transitions, "_save_watchers", [lambda model: model is OperationRun])
    saved = []

    def on_save(sender, instance, **kwargs):
        saved.append(instance.pk)

    post_save.connect(on_save, sender=OperationRun, dispatch_uid="test-watched-batch")
    runs = [OperationRunFactory(status=RunStatus.QUEUED) for _ in range(3)]
    saved.clear()
    try:
        # when
        with transaction.atomic():
            locked = lock_many(OperationRun, [r.pk for r in runs])
            with CaptureQueriesContext(connection) as queries, TransitionBatch() as batch:
                for run in locked:
                    batch.move(run, RunStatus.RUNNING)
    finally:
        post_save.disconnect(dispatch_uid="test-watched-batch", sender=OperationRun)

    # then: a save() each, each signalled
    updates = [q["sql"] for q in queries.captured_queries if "UPDATE" in q["sql"]]
    assert len(updates) == 3
    assert sorted(saved) == sorted(r.pk for r in runs)


def test_a_batch_saves_its_rows_in_one_savepoint():
    # given: three runs the poller-like caller moves together
    runs = [OperationRunFactory(status=RunStatus.QUEUED) for _ in range(3)]

    # when
    with transaction.atomic():
        locked = lock_many(OperationRun, [r.pk for r in runs])
        with CaptureQueriesContext(connection) as queries, TransitionBatch() as batch:
            for run in locked:
                batch.move(run, RunStatus.RUNNING)

    # then: not one savepoint (two round trips) per row
    savepoints = [q for q in queries.captured_queries if q["sql"].startswith("SAVEPOINT")]
    assert len(savepoints) == 1
    assert set(OperationRun.objects.values_list("status", flat=True)) == {RunStatus.RUNNING}


def test_a_batch_names_the_row_a_database_invariant_refuses(monkeypatch):
    # given: the machine that (wrongly) lets a completed run run again, two
    # completed runs, and an active run sharing its identity with the second
    monkeypatch.setattr(
        OperationRun,
        "state_machine",
        StateMachine(
            {RunStatus.COMPLETED: {RunStatus.RUNNING}},
            subject="Operation run",
            invalid_code="operation.invalid_transition",
        ),
    )
    workspace = WorkspaceFactory()
    OperationRunFactory(workspace=workspace, run_identity_hash="b" * 64, status=RunStatus.RUNNING)
    fine = _completed_run(workspace=workspace, run_identity_hash="a" * 64)
    clashing = _completed_run(workspace=workspace, run_identity_hash="b" * 64)

    # when
    with transaction.atomic():
        locked = lock_many(OperationRun, [fine.pk, clashing.pk])
        with pytest.raises(Conflict) as refused, TransitionBatch() as batch:
            for run in locked:
                batch.move(run, RunStatus.RUNNING, outcome=RunOutcome.PENDING, completed_at=None)
        # then: the transaction is still usable, the refused row's instance as it was
        assert OperationRun.objects.filter(pk=clashing.pk).exists()

    assert refused.value.code == "operation.constraint"
    assert refused.value.message.startswith(f"Operation run {clashing.pk} cannot become running")
    assert locked[1].status == RunStatus.COMPLETED


def test_a_batch_that_raises_writes_nothing():
    run = OperationRunFactory(status=RunStatus.QUEUED)

    with pytest.raises(InvalidTransition), transaction.atomic(), TransitionBatch() as batch:
        locked = batch.move(lock(OperationRun, pk=run.pk), RunStatus.RUNNING)
        batch.move(locked, RunStatus.QUEUED)  # not a move the machine has

    assert OperationRun.objects.get(pk=run.pk).status == RunStatus.QUEUED


def test_rows_are_locked_in_primary_key_order():
    runs = [OperationRunFactory() for _ in range(4)]

    with transaction.atomic():
        locked = lock_many(OperationRun, [r.pk for r in reversed(runs)])

    assert [r.pk for r in locked] == sorted(r.pk for r in runs)


def test_a_limited_lock_takes_the_first_rows_in_primary_key_order():
    runs = [OperationRunFactory() for _ in range(4)]

    with transaction.atomic():
        locked = lock_many(OperationRun.objects.filter(pk__in=[r.pk for r in runs]), limit=2)

    assert [r.pk for r in locked] == sorted(r.pk for r in runs)[:2]


@pytest.mark.django_db(transaction=True)
def test_skip_locked_leaves_the_rows_another_transaction_holds():
    if not on_postgres():
        pytest.skip("row locks are real on PostgreSQL only; SQLite has one writer")
    first, second = OperationRunFactory(), OperationRunFactory()
    held, release = threading.Event(), threading.Event()

    def holder():
        try:
            with transaction.atomic():
                lock(OperationRun, pk=first.pk)
                held.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(30)
        with transaction.atomic():
            free = lock_many(OperationRun, skip_locked=True)
        with transaction.atomic():  # a worker's batch: the first free rows
            batch = lock_many(OperationRun, skip_locked=True, limit=1)
    finally:
        release.set()
        thread.join(30)

    assert [r.pk for r in free] == [second.pk]
    assert [r.pk for r in batch] == [second.pk]


def test_the_first_row_of_a_queue_is_locked_in_the_queues_order_or_none():
    # given: a queue ordered by something other than the primary key
    older = OperationRunFactory(initiator_name="b")
    newer = OperationRunFactory(initiator_name="a")
    queue = OperationRun.objects.order_by("initiator_name")

    with transaction.atomic():
        first = lock_first(queue)
        # then: the queue's first row, held, so it may move
        assert first.pk == newer.pk
        transition(first, RunStatus.RUNNING)
        assert lock_first(queue.filter(initiator_name="c")) is None

    assert OperationRun.objects.get(pk=newer.pk).status == RunStatus.RUNNING
    assert OperationRun.objects.get(pk=older.pk).status == RunStatus.QUEUED


@pytest.mark.django_db(transaction=True)
def test_the_first_row_skipping_locked_ones_is_the_next_free_one():
    if not on_postgres():
        pytest.skip("row locks are real on PostgreSQL only; SQLite has one writer")
    first, second = OperationRunFactory(), OperationRunFactory()
    held, release = threading.Event(), threading.Event()

    def holder():
        try:
            with transaction.atomic():
                lock(OperationRun, pk=first.pk)
                held.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(30)
        with transaction.atomic():
            free = lock_first(OperationRun.objects.order_by("pk"), skip_locked=True)
    finally:
        release.set()
        thread.join(30)

    assert free.pk == second.pk


def test_each_or_all_runs_the_batch_once_when_nothing_fails():
    calls = []

    results = each_or_all(
        [1, 2, 3],
        together=lambda items: calls.append(list(items)) or [i * 10 for i in items],
        alone=lambda item: calls.append(item),
        failed=lambda item, error: calls.append(("failed", item)),
    )

    assert results == [10, 20, 30]
    assert calls == [[1, 2, 3]]


def test_each_or_all_undoes_the_batch_and_isolates_the_bad_item():
    # given: rows written by the batch, which then fails on item 2
    runs = [OperationRunFactory(status=RunStatus.QUEUED) for _ in range(3)]
    failures = []

    def move(run):
        if run.pk == runs[1].pk:
            raise ValueError("bad item")
        transition_if(run, RunStatus.RUNNING)
        return run.pk

    def together(items):
        return [move(run) for run in items]

    # when
    results = each_or_all(
        runs, together=together, alone=move, failed=lambda run, error: failures.append(run.pk)
    )

    # then: the good ones went through once each, the bad one is reported
    assert results == [runs[0].pk, runs[2].pk]
    assert failures == [runs[1].pk]
    statuses = dict(OperationRun.objects.values_list("pk", "status"))
    assert statuses == {
        runs[0].pk: RunStatus.RUNNING,
        runs[1].pk: RunStatus.QUEUED,
        runs[2].pk: RunStatus.RUNNING,
    }


def test_actors_are_named_the_same_everywhere():
    class Agent:
        actor_label = "agent:scanner-1"

    assert actor_label(None) == "system"
    assert actor_label(UserFactory(username="kim")) == "kim"
    assert actor_label(Agent()) == "agent:scanner-1"
