from datetime import timedelta

import pytest
from django.utils import timezone

from config.errors import Conflict
from operations.choices import RunOutcome, RunStatus
from operations.models import OperationRun
from operations.services import mark_run_running, start_run
from operations.tracking import RunAlreadyActive, tracked_run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_operation_types")]


def test_a_clean_body_completes_the_run_as_succeeded_with_its_counts():
    with tracked_run("test.workspace_job") as tracker:
        assert tracker.run.status == RunStatus.RUNNING
        tracker.incr("processed", 4)
        tracker.incr("processed")

    run = OperationRun.objects.get(pk=tracker.run.pk)
    assert (run.status, run.outcome) == (RunStatus.COMPLETED, RunOutcome.SUCCEEDED)
    assert run.summary_counts == {"processed": 5}


def test_recorded_failures_make_a_partial_success():
    with tracked_run("test.workspace_job") as tracker:
        tracker.incr("processed", 2)
        tracker.add_failure("item.bad", "row 3 was rejected")

    run = OperationRun.objects.get(pk=tracker.run.pk)
    assert run.outcome == RunOutcome.PARTIALLY_SUCCEEDED
    assert run.failure_summary == [{"code": "item.bad", "message": "row 3 was rejected"}]


def test_an_exception_fails_the_run_with_a_stable_code_and_is_re_raised():
    with pytest.raises(ValueError, match="boom"), tracked_run("test.workspace_job") as tracker:
        tracker.incr("processed", 1)
        raise ValueError("boom: token=abc123secret")

    run = OperationRun.objects.get(pk=tracker.run.pk)
    assert (run.status, run.outcome) == (RunStatus.COMPLETED, RunOutcome.FAILED)
    assert run.summary_counts == {"processed": 1}
    assert run.failure_summary[0]["code"] == "task.value_error"
    assert "abc123secret" not in run.failure_summary[0]["message"]
    assert run.failure_summary[0]["message"].startswith("ValueError: boom")


def test_an_application_error_keeps_its_own_code():
    with pytest.raises(Conflict), tracked_run("test.workspace_job") as tracker:
        raise Conflict("Knox said no", code="knox.rejected")

    run = OperationRun.objects.get(pk=tracker.run.pk)
    assert run.failure_summary[0]["code"] == "knox.rejected"


def test_entering_while_the_same_run_is_running_elsewhere_raises_already_active():
    run, _ = start_run(type="test.workspace_job")
    mark_run_running(run)

    with pytest.raises(RunAlreadyActive) as error, tracked_run("test.workspace_job"):
        pytest.fail("the body must not run")

    assert error.value.run.pk == run.pk
    assert OperationRun.objects.count() == 1


def test_a_queued_run_made_by_someone_else_is_picked_up():
    queued, _ = start_run(type="test.workspace_job")

    with tracked_run("test.workspace_job") as tracker:
        pass

    assert tracker.run.pk == queued.pk
    queued.refresh_from_db()
    assert queued.outcome == RunOutcome.SUCCEEDED


def test_as_a_decorator_it_passes_the_tracker_and_records_returned_counts():
    calls = []

    @tracked_run("test.workspace_job")
    def job(tracker, amount):
        calls.append(tracker.run.pk)
        return {"processed": amount, "unlisted": 1}

    assert job(3) == {"processed": 3, "unlisted": 1}
    assert job(4) == {"processed": 4, "unlisted": 1}

    runs = list(OperationRun.objects.order_by("pk"))
    assert [r.pk for r in runs] == calls
    assert [r.summary_counts for r in runs] == [{"processed": 3}, {"processed": 4}]
    assert runs[0].context["dropped_summary_keys"] == ["unlisted"]


def test_as_a_decorator_it_skips_when_the_run_is_already_running():
    run, _ = start_run(type="test.workspace_job")
    mark_run_running(run)
    calls = []

    @tracked_run("test.workspace_job")
    def job(tracker):
        calls.append(1)

    assert job() is None
    assert calls == []


def test_as_a_decorator_an_exception_fails_the_run_and_propagates():
    @tracked_run("test.workspace_job")
    def job(tracker):
        raise RuntimeError("nope")

    with pytest.raises(RuntimeError):
        job()

    run = OperationRun.objects.get()
    assert run.outcome == RunOutcome.FAILED
    assert run.failure_summary[0]["code"] == "task.runtime_error"


# --- a crashed worker's run is taken over once it is past its stale limit ------------------


def _crashed_running_run(*, minutes_ago: int) -> OperationRun:
    """A run left `running` by a worker that died ``minutes_ago`` minutes after it started."""
    run, _ = start_run(type="test.workspace_job")
    mark_run_running(run)
    OperationRun.objects.filter(pk=run.pk).update(
        started_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return run


def test_a_start_takes_over_a_running_run_past_its_stale_limit():
    # given: the test type may run an hour; this one has been silent for two
    crashed = _crashed_running_run(minutes_ago=120)

    # when
    fresh, created = start_run(type="test.workspace_job")

    # then: the crashed run is failed as stale, and a fresh one is queued
    assert created and fresh.pk != crashed.pk
    assert fresh.status == RunStatus.QUEUED
    assert fresh.context["took_over_run"] == crashed.pk
    crashed.refresh_from_db()
    assert (crashed.status, crashed.outcome) == (RunStatus.COMPLETED, RunOutcome.FAILED)
    assert [f["code"] for f in crashed.failure_summary] == ["run.stale"]
    assert "taken over by a new run" in crashed.failure_summary[0]["message"]


def test_a_queued_run_past_its_stale_limit_is_taken_over_too():
    stuck, _ = start_run(type="test.workspace_job")
    OperationRun.objects.filter(pk=stuck.pk).update(
        created_at=timezone.now() - timedelta(minutes=45)
    )

    fresh, created = start_run(type="test.workspace_job")

    assert created and fresh.pk != stuck.pk
    stuck.refresh_from_db()
    assert stuck.outcome == RunOutcome.FAILED


def test_a_running_run_within_its_limit_is_still_the_active_one():
    running = _crashed_running_run(minutes_ago=30)

    again, created = start_run(type="test.workspace_job")

    assert (again.pk, created) == (running.pk, False)
    running.refresh_from_db()
    assert running.status == RunStatus.RUNNING


def test_a_scheduled_body_is_not_skipped_behind_a_crashed_run():
    # given: a run a dead worker left running past the limit
    crashed = _crashed_running_run(minutes_ago=120)
    calls = []

    @tracked_run("test.workspace_job")
    def job(tracker):
        calls.append(tracker.run.pk)
        return {"processed": 1}

    # when: the next cycle comes
    assert job() == {"processed": 1}

    # then: it ran in a fresh run
    assert len(calls) == 1 and calls[0] != crashed.pk
    assert OperationRun.objects.get(pk=calls[0]).outcome == RunOutcome.SUCCEEDED


def test_a_slow_worker_that_was_taken_over_finishes_quietly(caplog):
    # given: a body still running while its run is taken over as stale
    with tracked_run("test.workspace_job") as slow:
        OperationRun.objects.filter(pk=slow.run.pk).update(
            started_at=timezone.now() - timedelta(hours=2)
        )
        fresh, created = start_run(type="test.workspace_job")

    # then: leaving the body neither raises nor reopens the closed run
    assert created
    slow.run.refresh_from_db()
    assert slow.run.outcome == RunOutcome.FAILED
    assert "completed elsewhere" in caplog.text
