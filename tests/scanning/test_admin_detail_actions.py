"""Actions on a scan job's detail page (queue, commit, retry assembly,
resume, cancel with confirmation; discard a batch): the same services and
operate_scanner check as the API; failures are error messages (red)."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import constants, get_messages
from django.urls import reverse

from scanning import services
from scanning.choices import ErrorCode, ScanJobStatus
from scanning.models import Document, ScanJob
from tests.operations.factories import UserFactory
from tests.scanning.factories import ScanJobFactory
from tests.scanning.pdfs import scanned_pdf, upload
from tests.scanning.test_admin import _preview_job

pytestmark = pytest.mark.django_db


def _do(client, job: ScanJob, name: str, **data):
    url = reverse("admin:scanning_scanjob_object_action", args=[job.pk, name])
    return client.post(url, data, follow=True)


def _messages(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in get_messages(response.wsgi_request)]


def _page(client, job) -> str:
    return client.get(reverse("admin:scanning_scanjob_change", args=[job.pk])).text


def _status(job) -> str:
    return ScanJob.objects.values_list("status", flat=True).get(pk=job.pk)


def test_a_draft_is_queued_from_its_page(admin_client):
    # given
    job = services.scan_job_create(title="Invoices")
    assert 'data-action="queue"' in _page(admin_client, job)

    # when
    response = _do(admin_client, job, "queue")

    # then
    assert _status(job) == ScanJobStatus.QUEUED
    assert _messages(response) == [(constants.SUCCESS, f"Scan job {job.pk}: queued.")]
    assert 'data-action="queue"' not in response.text


def test_a_preview_is_committed_from_its_page(admin_client, agent):
    # given
    job = _preview_job(agent.agent)
    assert 'data-action="commit"' in _page(admin_client, job)

    # when
    response = _do(admin_client, job, "commit")

    # then
    assert _status(job) == ScanJobStatus.COMMITTED
    assert Document.objects.get().source_job_id == job.pk
    assert _messages(response) == [(constants.SUCCESS, f"Scan job {job.pk}: committed.")]


def test_a_failed_assembly_is_retried_from_its_page(admin_client, agent):
    # given: the agent finished, the assembly failed
    job = services.scan_job_create(title="Broken merge")
    services.scan_job_queue(job_id=job.pk)
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)
    services.scan_batch_upload(
        job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf()), agent=agent.agent
    )
    services.scan_job_finish(job_id=job.pk, agent=agent.agent)
    ScanJob.objects.filter(pk=job.pk).update(
        status=ScanJobStatus.FAILED, error_code=ErrorCode.ASSEMBLY_FAILED
    )
    assert 'data-action="retry_assembly"' in _page(admin_client, job)

    # when
    response = _do(admin_client, job, "retry_assembly")

    # then: assembling again (the merge itself is queued for the cluster)
    assert _status(job) == ScanJobStatus.ASSEMBLING
    assert _messages(response) == [(constants.SUCCESS, f"Scan job {job.pk}: assembling.")]


def test_a_job_whose_agent_was_lost_is_resumed_from_its_page(admin_client):
    job = ScanJobFactory(status=ScanJobStatus.FAILED, error_code=ErrorCode.AGENT_LOST)
    page = _page(admin_client, job)
    assert 'data-action="resume"' in page
    assert 'data-action="retry_assembly"' not in page

    response = _do(admin_client, job, "resume")

    assert _status(job) == ScanJobStatus.QUEUED
    assert (constants.SUCCESS, f"Scan job {job.pk}: queued.") in _messages(response)


def test_cancel_asks_first(admin_client):
    # given
    job = services.scan_job_create(title="Maybe")
    url = reverse("admin:scanning_scanjob_object_action", args=[job.pk, "cancel"])

    # when: asked, not confirmed
    asked = admin_client.get(url)

    # then
    assert "Cancel this scan job?" in asked.text
    assert _status(job) == ScanJobStatus.DRAFT

    # when: confirmed
    response = _do(admin_client, job, "cancel", confirmed="yes")

    # then
    assert _status(job) == ScanJobStatus.CANCELED
    assert _messages(response) == [(constants.SUCCESS, f"Scan job {job.pk}: canceled.")]


def test_an_illegal_move_is_an_error_and_changes_nothing(admin_client):
    job = ScanJobFactory(status=ScanJobStatus.COMMITTED)

    response = _do(admin_client, job, "queue")

    [(level, text)] = _messages(response)
    assert level == constants.ERROR
    assert "cannot become queued" in text
    assert _status(job) == ScanJobStatus.COMMITTED


def test_queueing_needs_the_operate_scanner_permission(client):
    # given: staff who may view scan jobs only
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_scanjob"))
    job = services.scan_job_create(title="Not yours")
    client.force_login(viewer)

    # when
    response = _do(client, job, "queue")

    # then
    [(level, text)] = _messages(response)
    assert level == constants.ERROR
    assert "operate scanner" in text
    assert _status(job) == ScanJobStatus.DRAFT


def test_discarding_a_batch_twice_is_an_error_the_second_time(admin_client, agent):
    job = services.scan_job_create(title="Jam")
    services.scan_job_queue(job_id=job.pk)
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)
    batch, _ = services.scan_batch_upload(
        job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf()), agent=agent.agent
    )
    url = reverse("admin:scanning_scanjobbatch_discard", args=[batch.pk])

    first = admin_client.post(url, follow=True)
    again = admin_client.post(url, follow=True)

    assert [level for level, _ in _messages(first)] == [constants.SUCCESS]
    [(level, text)] = _messages(again)
    assert level == constants.ERROR
    assert "cannot become discarded" in text


def test_a_bulk_action_the_service_refuses_is_red(admin_client):
    job = ScanJobFactory(status=ScanJobStatus.COMMITTED)

    response = admin_client.post(
        reverse("admin:scanning_scanjob_changelist"),
        {"action": "queue_jobs", "_selected_action": [job.pk]},
        follow=True,
    )

    [(level, text)] = _messages(response)
    assert level == constants.ERROR
    assert "cannot become queued" in text
