import html
import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from scanning import services
from scanning.choices import BatchStatus, ScanJobStatus
from scanning.models import Document, ScanJob
from tests.operations.factories import UserFactory
from tests.scanning.factories import ScanJobFactory
from tests.scanning.pdfs import scanned_pdf, upload

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:scanning_scanjob_changelist")


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _action(admin_client, action, jobs):
    return admin_client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [job.pk for job in jobs]},
        follow=True,
    )


def _hidden_inputs(page: str) -> dict[str, str]:
    """The change form's hidden inputs (the inlines' management forms and ids),
    so a posted form is as valid as one sent by a browser."""
    found = {}
    for tag in re.findall(r"<input[^>]*>", page):
        if 'type="hidden"' not in tag or "csrfmiddlewaretoken" in tag:
            continue
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            found[html.unescape(name.group(1))] = html.unescape(value.group(1)) if value else ""
    return found


def _preview_job(agent) -> ScanJob:
    job = services.scan_job_create(title="Admin scan")
    services.scan_job_queue(job_id=job.pk)
    services.scan_job_claim(agent=agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent)
    services.scan_batch_upload(
        job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf()), agent=agent
    )
    services.scan_job_finish(job_id=job.pk, agent=agent)
    return services.scan_job_assemble(job_id=job.pk)


def test_adding_a_job_in_the_admin_creates_a_draft_through_the_service(admin_client):
    response = admin_client.post(
        reverse("admin:scanning_scanjob_add"),
        {"title": "From the console", "mode": "color", "resolution": "600", "source": "flatbed"},
        follow=True,
    )

    assert response.status_code == 200
    job = ScanJob.objects.get()
    assert job.status == ScanJobStatus.DRAFT
    assert job.settings == {"mode": "color", "resolution": 600, "source": "flatbed"}
    assert job.events.get().actor_name == "root"


def test_bad_settings_in_the_admin_form_are_form_errors(admin_client):
    response = admin_client.post(
        reverse("admin:scanning_scanjob_add"),
        {"title": "x", "mode": "color", "resolution": "5000", "source": "flatbed"},
    )

    assert response.status_code == 200
    assert "resolution" in response.context["adminform"].form.errors
    assert not ScanJob.objects.exists()


def test_queue_and_cancel_actions_go_through_services_and_report(admin_client):
    draft = ScanJobFactory(status=ScanJobStatus.DRAFT)
    queued = ScanJobFactory(status=ScanJobStatus.QUEUED)

    response = _action(admin_client, "queue_jobs", [draft, queued])

    draft.refresh_from_db()
    assert draft.status == ScanJobStatus.QUEUED
    messages = _messages(response)
    assert any("Queued 1 job" in m for m in messages)
    assert any(
        f"Job {queued.pk}" in m and "is queued; it cannot become queued" in m for m in messages
    )

    response = _action(admin_client, "cancel_jobs", [draft])
    draft.refresh_from_db()
    assert draft.status == ScanJobStatus.CANCELED
    assert draft.events.latest("id").actor_name == "root"


def test_the_commit_action_commits_and_the_change_page_links_the_preview(admin_client, agent):
    job = _preview_job(agent.agent)

    page = admin_client.get(reverse("admin:scanning_scanjob_change", args=[job.pk]))
    assert reverse("scanning:job-preview", kwargs={"pk": job.pk}) in page.content.decode()
    preview = admin_client.get(reverse("scanning:job-preview", kwargs={"pk": job.pk}))
    assert preview.status_code == 200 and preview["Content-Type"] == "application/pdf"

    response = _action(admin_client, "commit_jobs", [job])

    job.refresh_from_db()
    assert job.status == ScanJobStatus.COMMITTED
    assert Document.objects.get().pk == job.document_id
    assert any("Committed 1 job" in m for m in _messages(response))


def test_the_change_page_shows_batches_inline_with_a_discard_button(admin_client, agent):
    job = services.scan_job_create(title="Jam")
    services.scan_job_queue(job_id=job.pk)
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)
    batch, _ = services.scan_batch_upload(
        job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf()), agent=agent.agent
    )
    discard_url = reverse("admin:scanning_scanjobbatch_discard", args=[batch.pk])

    page = admin_client.get(reverse("admin:scanning_scanjob_change", args=[job.pk]))
    assert discard_url in page.content.decode()

    response = admin_client.post(discard_url, follow=True)
    again = admin_client.post(discard_url, follow=True)

    batch.refresh_from_db()
    assert batch.status == BatchStatus.DISCARDED
    assert any("discarded" in m for m in _messages(response))
    assert any("is discarded; it cannot become discarded" in m for m in _messages(again))


def test_a_job_past_draft_is_read_only_in_the_admin(admin_client):
    job = ScanJobFactory(status=ScanJobStatus.QUEUED, title="Fixed")

    response = admin_client.post(
        reverse("admin:scanning_scanjob_change", args=[job.pk]), {"title": "Changed"}, follow=True
    )

    assert response.status_code == 200
    job.refresh_from_db()
    assert job.title == "Fixed"


@pytest.mark.parametrize(
    "url",
    [
        reverse("admin:scanning_scanjob_changelist"),
        reverse("admin:scanning_scanjob_changelist") + "?status__exact=queued",
        reverse("admin:scanning_scanjobbatch_changelist"),
        reverse("admin:scanning_document_changelist"),
        reverse("admin:scanning_scanagent_changelist"),
        reverse("admin:scanning_scanagentstatus_changelist"),
        reverse("admin:scanning_scanjob_add"),
    ],
)
def test_the_scanning_admin_pages_load(admin_client, agent, url):
    _preview_job(agent.agent)
    assert admin_client.get(url).status_code == 200


def _staff(client, *codenames):
    from django.contrib.auth.models import Permission

    staff = UserFactory(username="viewer", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(staff)
    return client


@pytest.mark.parametrize(
    "action",
    ["queue_jobs", "cancel_jobs", "commit_jobs", "resume_jobs", "assemble_kept_jobs"],
)
def test_actions_need_the_operate_scanner_permission(client, action):
    # given: a staff user who may view (and even change) scan jobs, but not operate the scanner
    client = _staff(client, "view_scanjob", "change_scanjob")
    job = ScanJobFactory(status=ScanJobStatus.DRAFT)

    # when
    response = _action(client, action, [job])

    # then
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == ScanJobStatus.DRAFT
    assert not job.events.exists()


def test_batch_discard_needs_the_operate_scanner_permission(client, agent):
    # given: a scanned batch and a staff user who may view batches and jobs
    client = _staff(client, "view_scanjob", "view_scanjobbatch")
    job = services.scan_job_create(title="Jam")
    services.scan_job_queue(job_id=job.pk)
    services.scan_job_claim(agent=agent.agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent.agent)
    batch, _ = services.scan_batch_upload(
        job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf()), agent=agent.agent
    )

    # when: through the button's view and through the changelist action
    button = client.post(reverse("admin:scanning_scanjobbatch_discard", args=[batch.pk]))
    action = client.post(
        reverse("admin:scanning_scanjobbatch_changelist"),
        {"action": "discard_batches", "_selected_action": [batch.pk]},
    )

    # then
    assert (button.status_code, action.status_code) == (403, 403)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.SCANNED


def test_editing_a_job_in_the_admin_needs_the_operate_scanner_permission(client):
    # given: a staff user with the admin's change permission only
    client = _staff(client, "view_scanjob", "change_scanjob", "add_scanjob")
    job = services.scan_job_create(title="Draft")
    change = reverse("admin:scanning_scanjob_change", args=[job.pk])
    page = client.get(change).content.decode()

    # when: they save the draft with a new title
    response = client.post(
        change,
        {
            **_hidden_inputs(page),
            "title": "Renamed",
            "mode": "gray",
            "resolution": "300",
            "source": "adf",
        },
        follow=True,
    )

    # then: the service refuses, the admin says so, nothing changed
    job.refresh_from_db()
    assert job.title == "Draft"
    assert any("operate scanner" in m for m in _messages(response))
    assert client.get(reverse("admin:scanning_scanjob_add")).status_code == 403


def test_a_preview_is_retitled_in_the_admin_and_the_commit_action_files_it_so(admin_client, agent):
    job = _preview_job(agent.agent)
    change = reverse("admin:scanning_scanjob_change", args=[job.pk])
    page = admin_client.get(change).content.decode()
    assert 'name="title"' in page

    response = admin_client.post(
        change, {**_hidden_inputs(page), "title": "  Renamed in the console "}, follow=True
    )

    assert response.status_code == 200
    job.refresh_from_db()
    assert (job.title, job.status) == ("Renamed in the console", ScanJobStatus.PREVIEW)
    assert job.events.latest("id").code == "scan_job.retitled"

    _action(admin_client, "commit_jobs", [job])

    job.refresh_from_db()
    assert job.status == ScanJobStatus.COMMITTED
    assert job.document.title == "Renamed in the console"


def test_a_blank_title_for_a_preview_is_refused_in_the_admin(admin_client, agent):
    job = _preview_job(agent.agent)
    change = reverse("admin:scanning_scanjob_change", args=[job.pk])
    page = admin_client.get(change).content.decode()

    response = admin_client.post(change, {**_hidden_inputs(page), "title": "   "}, follow=True)

    assert response.status_code == 200
    assert "This field is required" in response.content.decode()

    job.refresh_from_db()
    assert job.title == "Admin scan"


def test_a_draft_is_edited_on_its_change_page(admin_client):
    job = services.scan_job_create(title="Draft")
    change = reverse("admin:scanning_scanjob_change", args=[job.pk])
    page = admin_client.get(change).content.decode()

    response = admin_client.post(
        change,
        {
            **_hidden_inputs(page),
            "title": "Draft, renamed",
            "mode": "lineart",
            "resolution": "150",
            "source": "flatbed",
        },
        follow=True,
    )

    assert response.status_code == 200
    job.refresh_from_db()
    assert job.title == "Draft, renamed"
    assert job.settings == {"mode": "lineart", "resolution": 150, "source": "flatbed"}


def _lost_job(agent) -> ScanJob:
    from datetime import timedelta

    from django.utils import timezone

    from scanning.models import ScanAgentStatus

    job = services.scan_job_create(title="Lost in the console")
    services.scan_job_queue(job_id=job.pk)
    services.scan_job_claim(agent=agent)
    services.scan_job_start_batch(job_id=job.pk, agent=agent)
    services.scan_batch_upload(
        job_id=job.pk, batch_seq=1, upload=upload(scanned_pdf()), agent=agent
    )
    services.scan_job_start_batch(job_id=job.pk, agent=agent)
    ScanAgentStatus.objects.update_or_create(
        id=1, defaults={"last_heartbeat": timezone.now() - timedelta(minutes=10)}
    )
    services.scan_agent_check()
    job.refresh_from_db()
    assert job.error_code == "agent.lost"
    return job


def test_the_resume_action_queues_a_lost_job_again_with_its_batches(admin_client, agent):
    job = _lost_job(agent.agent)

    response = _action(admin_client, "resume_jobs", [job])

    job.refresh_from_db()
    assert (job.status, job.batch_count) == (ScanJobStatus.QUEUED, 1)
    assert any("Queued again 1 job" in m for m in _messages(response))
    assert job.events.latest("id").actor_name == "root"


def test_the_assemble_kept_action_assembles_a_lost_job_or_says_the_scanner_is_taken(
    admin_client, agent, django_capture_on_commit_callbacks
):
    job = _lost_job(agent.agent)
    holder = ScanJobFactory(status=ScanJobStatus.READY)

    busy = _action(admin_client, "assemble_kept_jobs", [job])
    job.refresh_from_db()
    assert job.status == ScanJobStatus.FAILED
    assert any("another job holds the scanner" in m for m in _messages(busy))

    holder.status = ScanJobStatus.CANCELED
    holder.save()
    with django_capture_on_commit_callbacks(execute=False):
        done = _action(admin_client, "assemble_kept_jobs", [job])
    job.refresh_from_db()
    assert job.status == ScanJobStatus.ASSEMBLING
    assert any("Assembling the kept batches of 1 job" in m for m in _messages(done))


def test_the_commit_action_names_the_document_a_duplicate_file_matched(admin_client, agent):
    # given: a committed job, and a second job whose merged file is byte-identical
    first = _preview_job(agent.agent)
    _action(admin_client, "commit_jobs", [first])
    document = Document.objects.get()
    second = _preview_job(agent.agent)

    # when
    response = _action(admin_client, "commit_jobs", [second])

    # then
    second.refresh_from_db()
    assert second.status == ScanJobStatus.COMMITTED and second.document == document
    assert f"Job {second.pk}: The file matches document {document.pk} “Admin scan”" in " ".join(
        _messages(response)
    )
    assert Document.objects.count() == 1


def test_the_document_page_links_the_pdf_through_the_authenticated_file_view(
    admin_client, client, agent, api_client
):
    # given: a committed document
    job = _preview_job(agent.agent)
    _action(admin_client, "commit_jobs", [job])
    document = Document.objects.get()

    # when: the admin opens the document's page
    page = admin_client.get(reverse("admin:scanning_document_change", args=[document.pk]))

    # then: the PDF link is the file view, not MEDIA_URL
    html_text = page.content.decode()
    link = reverse("scanning:document-file", kwargs={"pk": document.pk})
    assert f'href="{link}"' in html_text
    assert "/media/" not in html_text
    # and it answers the PDF to the signed-in admin
    pdf = admin_client.get(link)
    assert (pdf.status_code, pdf["Content-Type"]) == (200, "application/pdf")
    with document.file.open("rb") as stored:
        assert b"".join(pdf.streaming_content) == stored.read()
    # and to staff holding the admin's view permission for documents
    reader = _staff(client, "view_document")
    assert reader.get(link).status_code == 200
    # but not to staff without it (the same 404 as a document that does not exist)
    other = UserFactory(username="no-documents", is_staff=True)
    client.force_login(other)
    missing_link = reverse("scanning:document-file", kwargs={"pk": 424242})
    refused, missing = client.get(link), client.get(missing_link)
    assert refused.status_code == missing.status_code == 404
    assert refused.json() == missing.json()
    # nor to anyone signed out
    assert api_client.get(link).status_code == 401
