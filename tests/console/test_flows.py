"""An on-call operator's flows in a real browser (Chromium through Playwright)
against the live server: find a failure from the index page, acknowledge an
alert where it is, scan a document and open its PDF.

The scan agent is stood in for by this test speaking the agent API over HTTP
(scanning.agent.client, as ``manage.py scan_agent`` does); a real ``qcluster``
assembles the batches."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from approvals.choices import ActionStatus, FailureStage
from automation.models import Alert
from scanning.agent.client import AgentClient
from scanning.agent.scanners import SimulatedScanner
from scanning.choices import ScanJobStatus
from scanning.models import Document, ScanJob
from scanning.services import scan_agent_create
from tests.automation.factories import AlertFactory
from tests.live_server import wait_until
from tests.observability.factories import PendingActionFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def _tile(page, label: str):
    return page.locator("#needs-attention li", has_text=label)


def test_the_index_shows_a_planted_failure_and_its_tile_opens_the_filtered_list(logged_in, step):
    page = logged_in
    step("given: one approval failed at submit, and one that is fine")
    failed = PendingActionFactory(status=ActionStatus.FAILED, failure_stage=FailureStage.SUBMIT)
    PendingActionFactory(status=ActionStatus.PENDING)

    step("the index shows the failure in red")
    page.goto("/admin/")
    tile = _tile(page, "Pending actions failed at submit")
    expect(tile).to_have_class("attention-bad")
    expect(tile.locator(".tile-value")).to_have_text("1")
    expect(page.locator(".attention-summary")).to_contain_text("Something needs attention")

    step("its link opens the list of exactly that failure")
    tile.locator("a").click()
    page.wait_for_url(re.compile(r"/admin/approvals/pendingaction/\?attention=failed_submit$"))
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(failed.ap_inf_id)

    step("the action's page offers the fix")
    rows.first.locator("th a").click()
    expect(page.locator('[data-action="resubmit"]')).to_be_visible()


def test_an_alert_is_acknowledged_from_its_page_and_the_index_turns_green(logged_in, step):
    page = logged_in
    # given
    alert = AlertFactory(severity="critical", title="Disk almost full")

    step("the critical alert is the first problem on the index")
    page.goto("/admin/")
    first = page.locator("#needs-attention li").first
    expect(first).to_contain_text("Unacknowledged critical alerts")
    expect(first).to_have_class("attention-bad")

    step("open the alert from the filtered list")
    first.locator("a").click()
    page.wait_for_url(re.compile(r"\?attention=active_critical$"))
    page.locator(f"#result_list a[href*='/alert/{alert.pk}/change/']").click()

    step("acknowledge it")
    page.locator('button[data-action="acknowledge"]').click()
    expect(page.locator(".messagelist .success")).to_have_text(f"Alert {alert.pk} acknowledged.")
    assert Alert.objects.get(pk=alert.pk).status == "acknowledged"

    step("the index is all clear")
    page.goto("/admin/")
    expect(page.locator(".attention-summary")).to_have_text("All clear: nothing needs attention.")


def test_a_scan_job_is_created_queued_scanned_committed_and_its_pdf_opens(
    logged_in, step, live_server, qcluster
):
    page = logged_in
    agent = scan_agent_create(name="scanner-host")

    step("create the scan job")
    page.goto("/admin/scanning/scanjob/add/")
    page.fill("#id_title", "Quarterly report")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist .success")).to_be_visible()
    job = ScanJob.objects.get()
    assert job.status == ScanJobStatus.DRAFT

    step("queue it from its page")
    page.goto(f"/admin/scanning/scanjob/{job.pk}/change/")
    page.locator('button[data-action="queue"]').click()
    expect(page.locator(".messagelist .success")).to_have_text(f"Scan job {job.pk}: queued.")

    step("the agent scans two batches over the agent API")
    client = AgentClient(live_server.url, agent.token)
    try:
        claimed = client.claim()
        assert claimed["id"] == job.pk
        scanner = SimulatedScanner(pages_per_batch=2)
        for batch_seq in (1, 2):
            client.start_batch(job.pk, batch_seq)
            client.upload_batch(job.pk, batch_seq, scanner.scan(job=claimed, batch_seq=batch_seq))
        client.finish(job.pk)
    finally:
        client.close()

    step("the cluster assembles the preview")
    assert wait_until(
        lambda: ScanJob.objects.get(pk=job.pk).status == ScanJobStatus.PREVIEW,
        timeout=60,
        process=qcluster,
    ), ScanJob.objects.get(pk=job.pk).status
    page.reload()
    preview = page.locator("a", has_text="PDF (4 pages)").first
    expect(preview).to_be_visible()
    answer = page.request.get(preview.get_attribute("href"))
    assert (answer.status, answer.headers["content-type"]) == (200, "application/pdf")

    step("commit it from its page")
    page.locator('button[data-action="commit"]').click()
    expect(page.locator(".messagelist .success")).to_have_text(f"Scan job {job.pk}: committed.")
    document = Document.objects.get()

    step("open the document's PDF")
    page.goto(f"/admin/scanning/document/{document.pk}/change/")
    link = page.locator("a", has_text="PDF (4 pages)")
    answer = page.request.get(link.get_attribute("href"))
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.body().startswith(b"%PDF")
