import pytest

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
