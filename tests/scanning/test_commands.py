from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_q.models import Schedule

from operations.choices import RunOutcome
from operations.models import OperationRun
from scanning import services
from scanning.agents import agent_for_token
from scanning.choices import ErrorCode, ScanJobStatus
from scanning.models import ScanAgent, ScanAgentStatus, ScanJob
from tests.scanning.factories import ScanJobFactory
from tests.scanning.pdfs import scanned_pdf, upload

pytestmark = pytest.mark.django_db


def _call(*args, **kwargs) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


def test_create_agent_prints_a_token_once_that_authenticates_and_is_stored_hashed():
    output = _call("scanning_create_agent", "host-1")

    token = output.split("keep it secret): ")[1].strip()
    agent = ScanAgent.objects.get(name="host-1")
    assert agent_for_token(token) == agent
    assert token not in agent.token_hash
    assert agent.token_prefix == token[:12]


def test_create_agent_twice_is_a_one_line_error():
    _call("scanning_create_agent", "host-1")

    with pytest.raises(CommandError, match="already exists"):
        _call("scanning_create_agent", "host-1")


def test_create_agent_with_a_token_file_is_idempotent(tmp_path):
    token_file = tmp_path / "agent.token"

    first = _call("scanning_create_agent", "local", "--token-file", str(token_file))
    token = token_file.read_text().strip()
    second = _call("scanning_create_agent", "local", "--token-file", str(token_file))

    assert "created" in first
    assert "already accepts" in second
    assert token_file.read_text().strip() == token
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert agent_for_token(token).name == "local"
    assert ScanAgent.objects.count() == 1


def test_a_token_file_survives_a_fresh_database(tmp_path):
    # given: a token file from an earlier database, and none of its agent rows
    token_file = tmp_path / "agent.token"
    _call("scanning_create_agent", "local", "--token-file", str(token_file))
    token = token_file.read_text().strip()
    ScanAgent.objects.all().delete()

    _call("scanning_create_agent", "local", "--token-file", str(token_file))

    assert token_file.read_text().strip() == token
    assert agent_for_token(token).name == "local"


def test_a_garbled_token_file_is_a_one_line_error(tmp_path):
    token_file = tmp_path / "agent.token"
    token_file.write_text("hunter2\n")

    with pytest.raises(CommandError, match="starts with 'bsa_'"):
        _call("scanning_create_agent", "local", "--token-file", str(token_file))
    assert not ScanAgent.objects.exists()


def test_check_agent_records_a_run_with_counts():
    ScanJobFactory(status=ScanJobStatus.SCANNING)
    ScanAgentStatus.objects.update(last_heartbeat=None)

    output = _call("scanning_check_agent")

    run = OperationRun.objects.get(type="scanning.check_agent")
    assert run.outcome == RunOutcome.SUCCEEDED
    assert run.summary_counts["failed_agent_lost"] == 1
    assert run.initiator_name == "manage.py scanning_check_agent"
    assert f"run {run.pk} succeeded" in output
    assert ScanJob.objects.get().error_code == ErrorCode.AGENT_LOST


def test_the_check_is_scheduled_every_minute():
    _call("sync_schedules")

    row = Schedule.objects.get(name="bureau:scanning.check_agent")
    assert (row.func, row.schedule_type, row.minutes) == (
        "scanning.tasks.check_agent_task",
        Schedule.MINUTES,
        1,
    )


def test_the_scheduled_task_runs_inside_tracked_run():
    from scanning.tasks import check_agent_task

    counts = check_agent_task()

    run = OperationRun.objects.get(type="scanning.check_agent")
    assert run.initiator_name == "schedule"
    assert counts == run.summary_counts
    assert set(counts) == {
        "checked",
        "agent_stale",
        "failed_agent_lost",
        "failed_stalled",
        "canceled_idle",
    }


def _failed_assembly(agent) -> ScanJob:
    job = services.scan_job_create(title="t")
    services.scan_job_queue(job_id=job.pk)
    services.scan_job_claim(agent=agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent)
    batch, _ = services.scan_batch_upload(
        job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf(pages=4)), agent=agent
    )
    services.scan_job_finish(job_id=job.pk, agent=agent)
    good = batch.file.read()
    batch.file.close()
    with open(batch.file.path, "wb") as handle:
        handle.write(b"not a pdf any more")
    assert services.scan_job_assemble(job_id=job.pk).status == ScanJobStatus.FAILED
    with open(batch.file.path, "wb") as handle:
        handle.write(good)
    return job


def test_retry_assembly_assembles_a_failed_job_and_records_the_run(agent):
    job = _failed_assembly(agent.agent)

    output = _call("scanning_retry_assembly", str(job.pk))

    job.refresh_from_db()
    assert job.status == ScanJobStatus.PREVIEW
    assert "4 pages" in output
    run = OperationRun.objects.filter(type="scanning.assemble_job").latest("pk")
    assert run.summary_counts == {"batches": 1, "pages": 4}


def test_retry_assembly_assembles_once_and_queues_nothing_for_the_cluster(
    agent, django_capture_on_commit_callbacks
):
    from django_q.models import OrmQ

    job = _failed_assembly(agent.agent)

    with django_capture_on_commit_callbacks(execute=True):
        _call("scanning_retry_assembly", str(job.pk))

    job.refresh_from_db()
    assert job.status == ScanJobStatus.PREVIEW
    assert not OrmQ.objects.exists()
    assert OperationRun.objects.filter(type="scanning.assemble_job").count() == 1


def test_retry_assembly_through_the_service_queues_the_task_unless_told_not_to(
    agent, django_capture_on_commit_callbacks
):
    from django_q.models import OrmQ

    job = _failed_assembly(agent.agent)
    with django_capture_on_commit_callbacks(execute=True):
        services.scan_job_retry_assembly(job_id=job.pk, run_now=False, enqueue=False)
    assert not OrmQ.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        services.scan_job_retry_assembly(job_id=job.pk, run_now=False)
    assert [task.func() for task in OrmQ.objects.all()] == ["scanning.tasks.assemble_scan_job_task"]


def test_retry_assembly_of_a_job_in_the_wrong_state_is_a_one_line_error():
    job = ScanJobFactory(status=ScanJobStatus.QUEUED)

    with pytest.raises(CommandError, match="is queued; it cannot become assembling"):
        _call("scanning_retry_assembly", str(job.pk))


def test_retry_assembly_of_an_unknown_job_is_a_one_line_error():
    with pytest.raises(CommandError, match="does not exist"):
        _call("scanning_retry_assembly", "424242")


def test_retry_assembly_while_another_job_holds_the_scanner_is_refused(agent):
    job = _failed_assembly(agent.agent)
    ScanJobFactory(status=ScanJobStatus.READY)

    with pytest.raises(CommandError, match="another job holds the scanner"):
        _call("scanning_retry_assembly", str(job.pk))
    job.refresh_from_db()
    assert job.status == ScanJobStatus.FAILED
