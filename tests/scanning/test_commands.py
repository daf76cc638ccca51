from io import StringIO

import pytest
from django.core.management import CommandError, call_command, get_commands, load_command_class
from django_q.models import Schedule

from config.commands import BureauCommand
from operations.choices import RunOutcome
from operations.models import OperationRun
from scanning import services
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
    assert services.scan_agent_authenticate(token=token) == agent
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
    assert services.scan_agent_authenticate(token=token).name == "local"
    assert ScanAgent.objects.count() == 1


def test_a_token_file_survives_a_fresh_database(tmp_path):
    # given: a token file from an earlier database, and none of its agent rows
    token_file = tmp_path / "agent.token"
    _call("scanning_create_agent", "local", "--token-file", str(token_file))
    token = token_file.read_text().strip()
    ScanAgent.objects.all().delete()

    _call("scanning_create_agent", "local", "--token-file", str(token_file))

    assert token_file.read_text().strip() == token
    assert services.scan_agent_authenticate(token=token).name == "local"


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
        "assembly_requeued",
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


# --- housekeeping: scan files past retention -------------------------------------------------


def _committed_job(agent, *, title: str, days_ago: float, batches: int = 2) -> ScanJob:
    """A job committed ``days_ago`` days ago, its files real files on disk,
    one batch discarded and rescanned (a discarded batch's file is kept too)."""
    from datetime import timedelta

    from django.utils import timezone

    job = services.scan_job_create(title=title)
    services.scan_job_queue(job_id=job.pk)
    services.scan_job_claim(agent=agent)
    for seq in range(1, batches + 1):
        services.scan_job_start_batch(job_id=job.pk, agent=agent)
        services.scan_batch_upload(
            job_id=job.pk,
            batch_seq=seq,
            upload=upload(scanned_pdf(job_id=job.pk, batch_seq=seq, title=title)),
            agent=agent,
        )
    services.scan_batch_discard(batch_id=job.batches.get(batch_seq=1).pk)
    services.scan_job_finish(job_id=job.pk, agent=agent)
    services.scan_job_assemble(job_id=job.pk)
    services.scan_job_commit(job_id=job.pk)
    ScanJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(days=days_ago))
    return ScanJob.objects.get(pk=job.pk)


def _paths(job: ScanJob) -> list:
    from pathlib import Path

    return [Path(batch.file.path) for batch in job.batches.all()] + [Path(job.file.path)]


def test_purge_removes_old_scan_files_keeps_the_document_and_is_idempotent(agent, settings):
    # given: retention of 30 days, a job committed 31 days ago and one committed yesterday
    from scanning.tasks import purge_files_task

    settings.SCANNING_FILE_RETENTION_DAYS = 30
    old = _committed_job(agent.agent, title="Old", days_ago=31)
    recent = _committed_job(agent.agent, title="Recent", days_ago=1)
    old_paths, recent_paths = _paths(old), _paths(recent)
    expected_bytes = sum(path.stat().st_size for path in old_paths)
    assert len(old_paths) == 3 and all(path.exists() for path in old_paths + recent_paths)

    # when: the scheduled housekeeping runs, twice
    first = purge_files_task()
    second = purge_files_task()

    # then: the old job's batch files and merged PDF are gone from disk, counted
    assert first == {
        "jobs": 1,
        "files_removed": 3,
        "files_missing": 0,
        "bytes_freed": expected_bytes,
        "failed": 0,
    }
    assert not any(path.exists() for path in old_paths)
    old.refresh_from_db()
    assert not old.file and set(old.batches.values_list("file", flat=True)) == {""}
    assert old.events.latest("id").code == "scan_job.files_purged"
    # the documents keep their files, and the recent job keeps everything
    for document in (old.document, recent.document):
        with document.file.open("rb") as stored:
            assert stored.read().startswith(b"%PDF-")
    assert all(path.exists() for path in recent_paths)
    # a second run finds nothing left to do
    assert second == {key: 0 for key in first}
    runs = OperationRun.objects.filter(type="scanning.purge_files").order_by("pk")
    assert [run.outcome for run in runs] == [RunOutcome.SUCCEEDED, RunOutcome.SUCCEEDED]
    assert runs[0].summary_counts == first and runs[0].initiator_name == "schedule"


def test_purge_counts_files_already_gone_and_leaves_unfinished_jobs_alone(agent, settings):
    # given: retention 0 (files go at the next run), an old committed job whose merged PDF
    # someone deleted by hand, and a failed job (agent lost) whose batches are kept to resume it
    from pathlib import Path

    from scanning.tasks import purge_files_task

    settings.SCANNING_FILE_RETENTION_DAYS = 0
    job = _committed_job(agent.agent, title="Half gone", days_ago=0.01)
    Path(job.file.path).unlink()
    failed = ScanJobFactory(status=ScanJobStatus.FAILED, error_code=ErrorCode.AGENT_LOST)
    kept = failed.batches.create(
        batch_seq=1, page_count=1, size_bytes=10, sha256="a" * 64, file="scanning/kept.pdf"
    )
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    default_storage.save("scanning/kept.pdf", ContentFile(b"%PDF-1.4 kept"))

    # when
    counts = purge_files_task()

    # then
    assert (counts["jobs"], counts["files_removed"], counts["files_missing"]) == (1, 2, 1)
    job.refresh_from_db()
    assert not job.file
    kept.refresh_from_db()
    assert kept.file.name == "scanning/kept.pdf" and default_storage.exists("scanning/kept.pdf")


def test_a_negative_retention_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.SCANNING_FILE_RETENTION_DAYS = -1

    with pytest.raises(ImproperlyConfigured, match="SCANNING_FILE_RETENTION_DAYS"):
        services.scan_files_purge()


def test_the_purge_is_scheduled_daily_and_in_the_operation_catalog():
    from operations.catalog import operation_catalog

    _call("sync_schedules")

    row = Schedule.objects.get(name="bureau:scanning.purge_files")
    assert (row.func, row.schedule_type, row.cron) == (
        "scanning.tasks.purge_files_task",
        Schedule.CRON,
        "40 3 * * *",
    )
    assert "bytes_freed" in operation_catalog.get("scanning.purge_files").summary_keys


# --- bad arguments: one line, non-zero exit ---------------------------------------------------

TOKEN = "bsa_" + "x" * 40


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server", "not-a-url"], "--server 'not-a-url' is not Bureau's base URL"),
        (["--server", "http://"], "(it has no host)"),
        (["--server", "ftp://scanner.example"], "(it needs http:// or https://)"),
        (["--server", "http://127.0.0.1:99999"], "(it is not a valid URL)"),
        (["--server", "http://host name"], "(it is not a valid URL)"),
        (["--server", "http://h", "--token", "hunter2"], "--token is not a scan agent token"),
        (["--server", "http://h", "--token", TOKEN, "--pages", "0"], "--pages must be at least 1"),
        (
            ["--server", "http://h", "--token", TOKEN, "--max-jobs", "0"],
            "--max-jobs must be at least 1",
        ),
        (
            ["--server", "http://h", "--token", TOKEN, "--poll-interval", "-1"],
            "--poll-interval must be more than 0 seconds",
        ),
        (
            ["--server", "http://h", "--token", TOKEN, "--heartbeat-interval", "0"],
            "--heartbeat-interval must be more than 0 seconds",
        ),
        (
            ["--server", "http://h", "--token", TOKEN, "--batch-pause", "-2"],
            "--batch-pause must be 0 seconds or more",
        ),
        (
            ["--server", "http://h", "--token", TOKEN, "--scanner", "sane"]
            + ["--scanimage", "/nonexistent/scanimage"],
            "/nonexistent/scanimage not found",
        ),
    ],
)
def test_scan_agent_refuses_bad_arguments_with_one_line(args, message):
    with pytest.raises(CommandError) as error:
        _call("scan_agent", *args)

    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_scan_agent_refuses_a_bad_token_file_with_one_line(tmp_path):
    binary = tmp_path / "binary.token"
    binary.write_bytes(b"\xd0\xff\x00garbage")
    garbled = tmp_path / "garbled.token"
    garbled.write_text("not-a-token\n")
    cases = {
        tmp_path / "missing" / "agent.token": "No such file or directory",
        tmp_path: "Is a directory",
        binary: "is not a text file",
        garbled: "is not a scan agent token",
    }

    for path, message in cases.items():
        with pytest.raises(CommandError, match=message) as error:
            _call("scan_agent", "--server", "http://h", "--token-file", str(path))
        assert "not-a-token" not in str(error.value)  # a token is never echoed


def test_create_agent_refuses_bad_arguments_with_one_line(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    binary = tmp_path / "binary.token"
    binary.write_bytes(b"\xd0\xff\x00garbage")
    cases = [
        (["   "], "An agent name of 1–100 characters is required"),
        (["x" * 101], "An agent name of 1–100 characters is required"),
        (["local", "--token-file", str(tmp_path)], "cannot read .*: Is a directory"),
        (["local", "--token-file", str(binary)], "is not a token file"),
        (["local", "--token-file", str(not_a_folder / "agent.token")], "Not a directory"),
    ]

    for args, message in cases:
        with pytest.raises(CommandError, match=message):
            _call("scanning_create_agent", *args)
    assert not ScanAgent.objects.exists()


def test_retry_assembly_with_a_job_id_that_is_not_a_number_is_a_one_line_error():
    with pytest.raises(CommandError, match="invalid int value: 'abc'"):
        _call("scanning_retry_assembly", "abc")


def test_every_scanning_command_turns_domain_errors_into_one_line():
    # given: the commands the scanning app ships
    names = sorted(name for name, app in get_commands().items() if app == "scanning")
    assert {"scan_agent", "scanning_check_agent", "scanning_create_agent"} <= set(names)

    # then: each is a BureauCommand (a domain error is one line and a non-zero exit)
    plain = [
        name
        for name in names
        if not isinstance(load_command_class("scanning", name), BureauCommand)
    ]
    assert plain == []
