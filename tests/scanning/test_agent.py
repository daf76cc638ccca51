"""The reference agent for real: ``manage.py scan_agent`` as a subprocess
against a live server (pytest-django's ``live_server``, or ``runserver``
started and restarted by the test), a real ``qcluster`` assembling, and the
SANE scanner driven through a stand-in ``scanimage`` script."""

import io
import stat
import sys
import time

import pikepdf
import pytest
import requests
from rest_framework.authtoken.models import Token

from scanning import selectors, services
from scanning.agent.client import AgentClient, Backoff
from scanning.agent.runner import Agent, AgentOptions
from scanning.agent.scanners import SaneScanner, ScannerError, SimulatedScanner
from scanning.choices import ErrorCode, ScanJobStatus
from scanning.models import Document, ScanJob
from tests.live_server import free_port, start_manage, stop_process, wait_for_http, wait_until
from tests.scanning.pdfs import page_labels, page_texts

# The live server, the cluster and this process must agree on MEDIA_ROOT.
SHARED_MEDIA = True

pytestmark = pytest.mark.django_db(transaction=True)


def _queue(title: str) -> ScanJob:
    job = services.scan_job_create(title=title, settings={"mode": "gray", "resolution": 150})
    return services.scan_job_queue(job_id=job.pk)


def _status(job: ScanJob) -> str:
    return ScanJob.objects.values_list("status", flat=True).get(pk=job.pk)


def test_scan_agent_and_qcluster_scan_a_job_end_to_end(live_server, agent, operator):
    # given: a queued job, a real cluster, and the agent as its own process
    job = _queue("Quarterly report")
    cluster = start_manage("qcluster", Q_WORKERS="1")
    scan_agent = start_manage(
        "scan_agent",
        "--server", live_server.url,
        "--token", agent.token,
        "--batches", "2",
        "--pages", "2",
        "--poll-interval", "0.2",
        "--heartbeat-interval", "1",
        "--max-jobs", "1",
    )  # fmt: skip
    try:
        # when: the agent scans, uploads and finishes; the cluster assembles
        scan_agent.wait(timeout=60)
        assert wait_until(
            lambda: _status(job) == ScanJobStatus.PREVIEW, timeout=60, process=cluster
        ), f"job is {_status(job)}"
    finally:
        agent_output = stop_process(scan_agent)
        cluster_output = stop_process(cluster)
        print(agent_output, cluster_output)

    # then
    assert scan_agent.returncode == 0, agent_output
    assert "scan agent stopped after 1 job(s)" in agent_output
    job.refresh_from_db()
    assert (job.batch_count, job.page_count) == (2, 4)
    assert selectors.scan_agent_status_get().agent_version.startswith("bureau-reference-agent")

    # and the operator previews it over HTTP: the pages in scan order, with the title drawn on them
    url = f"{live_server.url}/api/v1/scanning/jobs/{job.pk}/preview/"
    assert requests.get(url, timeout=10).status_code == 401  # anonymous
    token = Token.objects.create(user=operator)
    preview = requests.get(url, headers={"Authorization": f"Token {token.key}"}, timeout=10)
    assert preview.status_code == 200
    assert preview.headers["Content-Type"] == "application/pdf"
    assert page_labels(preview.content) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(b"(Quarterly report)" in text for text in page_texts(preview.content))
    committed = services.scan_job_commit(job_id=job.pk, actor=operator)
    assert committed.status == ScanJobStatus.COMMITTED
    assert Document.objects.get().title == "Quarterly report"


def test_scan_agent_rides_out_a_server_restart(agent):
    # given: a job, the agent started before the server is up
    job = _queue("Restart me")
    port = free_port()
    server_url = f"http://127.0.0.1:{port}"
    scan_agent = start_manage(
        "scan_agent",
        "--server", server_url,
        "--token", agent.token,
        "--batches", "2",
        "--pages", "1",
        "--batch-pause", "3",
        "--poll-interval", "0.2",
        "--max-backoff", "0.5",
        "--exit-when-idle",
    )  # fmt: skip
    server = start_manage("runserver", f"127.0.0.1:{port}", "--noreload")
    try:
        # when: the server goes down after the first batch and comes back
        assert wait_until(
            lambda: ScanJob.objects.get(pk=job.pk).batch_count >= 1, timeout=60, process=scan_agent
        )
        stop_process(server)
        # Down for longer than the agent's pause between batches (3 s), so its
        # next request meets the outage whatever the timing.
        time.sleep(4.5)
        server = start_manage("runserver", f"127.0.0.1:{port}", "--noreload")
        scan_agent.wait(timeout=60)
    finally:
        agent_output = stop_process(scan_agent)
        stop_process(server)
        print(agent_output)

    # then: the agent retried through the outage and finished the job
    assert scan_agent.returncode == 0, agent_output
    assert "retrying in" in agent_output
    # each outage (the restart, and the start if the agent came up first) said
    # once when it began and once when it ended, not on every retry: the restart
    # alone lasted 4.5 s of retries at most 0.5 s apart
    outages = agent_output.count("retrying in")
    assert outages in (1, 2), agent_output
    assert agent_output.count("the server answers again") == outages, agent_output
    assert "nothing queued; exiting" in agent_output
    job.refresh_from_db()
    assert job.status == ScanJobStatus.ASSEMBLING
    assert list(job.batches.values_list("batch_seq", flat=True)) == [1, 2]


def test_scan_agent_with_a_bad_token_exits_with_one_line(live_server):
    process = start_manage("scan_agent", "--server", live_server.url, "--token", "bsa_" + "x" * 40)
    output = stop_process(process) if process.wait(timeout=30) is not None else ""

    assert process.returncode == 1
    assert "refused the agent token" in output
    assert "Traceback" not in output


FAKE_SCANIMAGE = """\
#!{python}
# Stands in for SANE's scanimage: there is no scanner here. Records its
# arguments and writes {pages} 8-bit gray PNM pages like --batch does.
import sys
args = sys.argv[1:]
open({log!r}, "a").write(" ".join(args) + "\\n")
pattern = next(a.split("=", 1)[1] for a in args if a.startswith("--batch="))
for n in range(1, {pages} + 1):
    with open(pattern % n, "wb") as page:
        page.write(b"P5\\n# fake\\n16 8\\n255\\n" + bytes(range(128)))
if {pages} == 0:
    sys.stderr.write("scanimage: sane_start: Document feeder jammed\\n")
    sys.exit(1)
sys.exit(0)
"""


def _fake_scanimage(tmp_path, pages: int):
    log = tmp_path / "scanimage.log"
    script = tmp_path / f"scanimage-{pages}"
    script.write_text(FAKE_SCANIMAGE.format(python=sys.executable, pages=pages, log=str(log)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script), log


JOB = {
    "id": 7,
    "title": "ADF",
    "settings": {"mode": "gray", "resolution": 200, "source": "adf_duplex"},
}


def test_the_sane_scanner_runs_scanimage_and_wraps_the_pages_into_a_pdf(tmp_path):
    program, log = _fake_scanimage(tmp_path, pages=3)

    pdf = SaneScanner(scanimage=program, device="epson:libusb:001").scan(job=JOB, batch_seq=1)

    with pikepdf.open(io.BytesIO(pdf)) as document:
        assert len(document.pages) == 3
        width = float(document.pages[0].MediaBox[2])
        assert width == pytest.approx(16 * 72 / 200)
    arguments = log.read_text()
    for expected in (
        "--mode=Gray",
        "--resolution=200",
        "--source=ADF Duplex",
        "--format=pnm",
        "--device-name=epson",
    ):
        assert expected in arguments


def test_a_jammed_sane_scan_is_reported_and_the_job_fails(tmp_path, live_server, agent):
    # given: a claimed-to-be job and a scanner that jams
    job = _queue("Jammed")
    program, _log = _fake_scanimage(tmp_path, pages=0)
    with pytest.raises(ScannerError, match="Document feeder jammed"):
        SaneScanner(scanimage=program).scan(job=JOB, batch_seq=1)
    client = AgentClient(live_server.url, agent.token, backoff=Backoff(initial=0.05, maximum=0.1))
    runner = Agent(
        client,
        SaneScanner(scanimage=program),
        AgentOptions(batches=1, poll_interval=0.1, max_jobs=1, heartbeat_interval=60),
    )

    # when
    done = runner.run()
    client.close()

    # then: the agent reported the failure through the API
    assert done == 1
    job.refresh_from_db()
    assert job.status == ScanJobStatus.FAILED
    assert job.error_code == ErrorCode.AGENT_ERROR
    assert "feeder jammed" in job.error


def test_a_restarted_agent_resumes_the_job_it_had_claimed(live_server, agent):
    # given: the agent claimed a job and scanned batch 1, then its process died
    job = _queue("Resume me")
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)
    from tests.scanning.pdfs import scanned_pdf, upload

    services.scan_batch_upload(
        job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf(job_id=job.pk)), agent=agent.agent
    )

    # when: a new agent process starts (in process here) and is told to scan 2 batches
    client = AgentClient(live_server.url, agent.token)
    runner = Agent(
        client,
        SimulatedScanner(pages_per_batch=1),
        AgentOptions(batches=2, poll_interval=0.1, max_jobs=1, heartbeat_interval=60),
    )
    done = runner.run()
    client.close()

    # then: it learnt about the job from the heartbeat and finished it, adding batch 2
    assert done == 1
    job.refresh_from_db()
    assert job.status == ScanJobStatus.ASSEMBLING
    assert list(job.batches.values_list("batch_seq", "page_count")) == [(1, 2), (2, 1)]


def test_the_sane_scanner_without_scanimage_is_a_scanner_error():
    with pytest.raises(ScannerError, match="not found"):
        SaneScanner(scanimage="/nonexistent/scanimage").scan(job=JOB, batch_seq=1)


def test_scan_agent_with_a_server_that_is_not_a_url_prints_one_line_and_exits_non_zero():
    # given / when: the real command, as an operator would type it
    process = start_manage("scan_agent", "--server", "not-a-url", "--token", "bsa_" + "x" * 40)
    process.wait(timeout=60)
    output = stop_process(process)

    # then: one line, no traceback, a non-zero exit
    assert process.returncode == 1
    assert output.strip().splitlines() == [
        "CommandError: --server 'not-a-url' is not Bureau's base URL (it needs http:// or "
        "https://); give one like http://127.0.0.1:8000"
    ]


def test_scan_agent_pointed_at_something_else_than_bureau_says_so_in_one_line(live_server, agent):
    # given: a server that answers, but not with Bureau's agent API at that base URL
    from django.core.management import CommandError, call_command

    server = f"{live_server.url}/not-bureau"

    # when / then
    with pytest.raises(CommandError) as error:
        call_command("scan_agent", "--server", server, "--token", agent.token, "--exit-when-idle")
    assert str(error.value) == (
        f"the server at {server} did not answer as Bureau's agent API (HTTP 404); "
        "is --server Bureau's base URL?"
    )


def test_the_console_shows_the_agents_state_changes_not_its_idle_polls(agent):
    # given: runserver (as `make run` starts it) and an idle agent asking for
    # work ten times a second and beating twice a second
    port = free_port()
    server_url = f"http://127.0.0.1:{port}"
    server = start_manage("runserver", f"127.0.0.1:{port}", "--noreload")
    scan_agent = None
    try:
        wait_for_http(f"{server_url}/healthz", process=server, timeout=60)
        scan_agent = start_manage(
            "scan_agent",
            "--server", server_url,
            "--token", agent.token,
            "--poll-interval", "0.1",
            "--heartbeat-interval", "0.5",
        )  # fmt: skip
        assert wait_until(
            lambda: "waiting for a queued job" in scan_agent.log_path.read_text(),
            timeout=60,
            process=scan_agent,
        ), scan_agent.log_path.read_text()

        # when: it stays idle for two seconds (about twenty polls), and someone
        # else asks the server something
        time.sleep(2)
        assert requests.get(f"{server_url}/healthz", timeout=10).status_code == 200
    finally:
        agent_output = stop_process(scan_agent) if scan_agent else ""
        server_output = stop_process(server)
        print(agent_output, server_output)

    # then: the agent said once that it waits, and the server's log has the
    # other request but none of the answered polls and heartbeats
    assert agent_output.count("waiting for a queued job (asking every 0.1 s)") == 1, agent_output
    assert selectors.scan_agent_status_get() is not None  # it did poll and beat
    assert '"GET /healthz HTTP/1.1" 200' in server_output, server_output
    assert "/agent/claim/" not in server_output
    assert "/agent/heartbeat/" not in server_output
