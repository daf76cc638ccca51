"""The operator console for scanning. Every change goes through services;
refusals come back as messages, never as a 500."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from config.admin_actions import ObjectAction, ObjectActionsMixin
from config.admin_display import badge_column, in_state_for
from config.errors import ApplicationError
from config.observability.attention import AttentionListFilter
from operations.admin import pretty_json
from scanning import services
from scanning.choices import (
    ACTIVE_STATUSES,
    DEFAULT_SCAN_SETTINGS,
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    BatchStatus,
    ErrorCode,
    ScanJobStatus,
    ScanMode,
    ScanSource,
)
from scanning.models import (
    Document,
    ScanAgent,
    ScanAgentStatus,
    ScanJob,
    ScanJobBatch,
    ScanJobEvent,
)


def _error_text(error: Exception) -> str:
    if isinstance(error, ApplicationError):
        return error.message
    if isinstance(error, ValidationError):
        return "; ".join(error.messages)
    return str(error)


def _job_line(job: ScanJob) -> str:
    return f"Scan job {job.pk}: {job.get_status_display().lower()}."


def _duplicate_notice(job: ScanJob) -> str | None:
    duplicate = job.duplicate_of
    return services.document_duplicate_message(duplicate) if duplicate else None


class ScanJobForm(forms.ModelForm):
    """Title plus the three scan settings as real fields, not raw JSON."""

    mode = forms.ChoiceField(choices=ScanMode.choices, initial=DEFAULT_SCAN_SETTINGS["mode"])
    resolution = forms.IntegerField(
        min_value=MIN_RESOLUTION,
        max_value=MAX_RESOLUTION,
        initial=DEFAULT_SCAN_SETTINGS["resolution"],
        help_text="dpi",
    )
    source = forms.ChoiceField(choices=ScanSource.choices, initial=DEFAULT_SCAN_SETTINGS["source"])

    class Meta:
        model = ScanJob
        fields = ["title"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and isinstance(self.instance.settings, dict):
            for key in ("mode", "resolution", "source"):
                if key in self.instance.settings:
                    self.initial[key] = self.instance.settings[key]

    def scan_settings(self) -> dict:
        return {key: self.cleaned_data[key] for key in ("mode", "resolution", "source")}


class PreviewTitleForm(forms.ModelForm):
    """A job in preview: only the title may change, the title it is committed under."""

    class Meta:
        model = ScanJob
        fields = ["title"]


class BatchInline(admin.TabularInline):
    model = ScanJobBatch
    extra = 0
    can_delete = False
    fields = ["batch_seq", "status", "page_count", "size_bytes", "sha256", "created_at", "discard"]
    readonly_fields = fields
    ordering = ["batch_seq"]

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="")
    def discard(self, batch: ScanJobBatch):
        if batch.status != BatchStatus.SCANNED or batch.job.status not in (
            ScanJobStatus.READY,
            ScanJobStatus.SCANNING,
        ):
            return "—"
        # formaction posts the change form (with its CSRF token) to the discard view.
        url = reverse("admin:scanning_scanjobbatch_discard", args=[batch.pk])
        return format_html(
            '<button type="submit" formaction="{}" formmethod="post" class="button">Discard (jam)</button>',
            url,
        )


class EventInline(admin.TabularInline):
    model = ScanJobEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "from_status", "to_status", "actor_name", "code", "message"]
    readonly_fields = fields
    verbose_name_plural = "history"

    def has_add_permission(self, request, obj=None):
        return False


def _status_in(*statuses):
    return lambda job: job.status in statuses


def _failed_with(*codes):
    return lambda job: job.status == ScanJobStatus.FAILED and job.error_code in codes


def _assembly_retryable(job: ScanJob) -> bool:
    return job.status == ScanJobStatus.ASSEMBLING or _failed_with(ErrorCode.ASSEMBLY_FAILED)(job)


@admin.register(ScanJob)
class ScanJobAdmin(ObjectActionsMixin, admin.ModelAdmin):
    form = ScanJobForm
    list_display = [
        "id",
        "title",
        badge_column("status"),
        in_state_for,
        "batch_count",
        "page_count",
        "preview_link",
        "document",
        "updated_at",
    ]
    list_filter = [AttentionListFilter, "status"]
    search_fields = ["=id", "title", "file_hash"]
    list_select_related = ["document"]
    ordering = ["-created_at", "-id"]
    actions = ["queue_jobs", "cancel_jobs", "commit_jobs", "resume_jobs", "assemble_kept_jobs"]
    inlines = [BatchInline, EventInline]
    # On the detail page, the same services (and the operate_scanner check) as the API.
    object_actions = (
        ObjectAction("queue", "Queue for scanning", available=_status_in(ScanJobStatus.DRAFT)),
        ObjectAction(
            "commit",
            "Commit into the inbox",
            available=_status_in(ScanJobStatus.PREVIEW, ScanJobStatus.COMMITTING),
        ),
        ObjectAction("retry_assembly", "Retry assembly", available=_assembly_retryable),
        ObjectAction(
            "resume",
            "Resume (queue again, keep the batches)",
            available=_failed_with(ErrorCode.AGENT_LOST, ErrorCode.STALLED),
        ),
        ObjectAction(
            "assemble_kept",
            "Assemble the kept batches",
            available=_failed_with(ErrorCode.AGENT_LOST, ErrorCode.STALLED),
        ),
        ObjectAction(
            "cancel",
            "Cancel",
            available=_status_in(ScanJobStatus.DRAFT, ScanJobStatus.QUEUED, *ACTIVE_STATUSES),
            confirm="Cancel this scan job? Its batches are not committed.",
        ),
    )
    info_fields = [
        "status",
        "batch_count",
        "page_count",
        "preview_link",
        "file_hash",
        "document",
        "agent",
        "error_code",
        "error",
        "created_by",
        "queued_at",
        "last_activity_at",
        "last_progress_at",
        "finished_at",
        "created_at",
        "updated_at",
    ]

    def get_inlines(self, request, obj=None):
        return [] if obj is None else self.inlines

    @admin.display(description="settings")
    def settings_pretty(self, job):
        return pretty_json(job.settings)

    def get_fieldsets(self, request, obj=None):
        editable = ["title", "mode", "resolution", "source"]
        if obj is None:
            return [(None, {"fields": editable})]
        if obj.status != ScanJobStatus.DRAFT:
            editable = ["title", "settings_pretty"]
        return [(None, {"fields": editable}), ("State", {"fields": self.info_fields})]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        if obj.status == ScanJobStatus.PREVIEW:
            # The title may still change: "Commit into the inbox" files it under it.
            return ["settings_pretty", *self.info_fields]
        if obj.status != ScanJobStatus.DRAFT:
            return ["title", "settings_pretty", *self.info_fields]
        return self.info_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None and obj.status == ScanJobStatus.PREVIEW:
            kwargs["form"] = PreviewTitleForm
        elif obj is not None and obj.status != ScanJobStatus.DRAFT:
            kwargs["form"] = forms.ModelForm
        return super().get_form(request, obj, change=change, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return super().has_add_permission(request) and request.user.has_perm(
            "scanning.operate_scanner"
        )

    def save_model(self, request, obj, form, change):
        if isinstance(form, PreviewTitleForm):
            try:
                services.scan_job_retitle(job_id=obj.pk, title=obj.title, actor=request.user)
            except (ApplicationError, ValidationError) as error:
                self.message_user(request, _error_text(error), messages.ERROR)
            obj.refresh_from_db()
            return
        if not hasattr(form, "scan_settings"):
            return  # a job past draft and preview: nothing on the form is editable
        try:
            if change:
                job = services.scan_job_update(
                    job_id=obj.pk,
                    title=obj.title,
                    settings=form.scan_settings(),
                    actor=request.user,
                )
            else:
                job = services.scan_job_create(
                    title=obj.title, settings=form.scan_settings(), actor=request.user
                )
        except (ApplicationError, ValidationError) as error:
            self.message_user(request, _error_text(error), messages.ERROR)
            obj.refresh_from_db()
            return
        obj.pk = job.pk
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        # Batches and events are read-only: nothing related is saved, but the
        # change message reads what the formsets "saved".
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.display(description="preview")
    def preview_link(self, job: ScanJob):
        if not job.file:
            return "—"
        url = reverse("scanning:job-preview", kwargs={"pk": job.pk})
        return format_html('<a href="{}" target="_blank">PDF ({} pages)</a>', url, job.page_count)

    def do_queue(self, request, job):
        return _job_line(services.scan_job_queue(job_id=job.pk, actor=request.user))

    def do_commit(self, request, job):
        job = services.scan_job_commit(job_id=job.pk, actor=request.user)
        duplicate = _duplicate_notice(job)
        if duplicate:
            self.message_user(request, duplicate, messages.WARNING)
        return _job_line(job)

    def do_retry_assembly(self, request, job):
        job = services.scan_job_retry_assembly(job_id=job.pk, actor=request.user, run_now=False)
        return _job_line(job)

    def do_resume(self, request, job):
        return _job_line(services.scan_job_resume(job_id=job.pk, actor=request.user))

    def do_assemble_kept(self, request, job):
        return _job_line(services.scan_job_assemble_kept(job_id=job.pk, actor=request.user))

    def do_cancel(self, request, job):
        return _job_line(services.scan_job_cancel(job_id=job.pk, actor=request.user))

    def _run_action(self, request, queryset, service, verb: str, notice=None):
        """Run ``service`` on each selected job; ``notice(job)`` may return a
        warning to show about a job the service did change."""
        if not request.user.has_perm("scanning.operate_scanner"):
            raise PermissionDenied
        done = 0
        for job in queryset.order_by("pk"):
            try:
                changed = service(job_id=job.pk, actor=request.user)
            except (ApplicationError, ValidationError) as error:
                self.message_user(request, f"Job {job.pk}: {_error_text(error)}", messages.ERROR)
            else:
                done += 1
                warning = notice(changed) if notice else None
                if warning:
                    self.message_user(request, f"Job {job.pk}: {warning}", messages.WARNING)
        if done:
            self.message_user(request, f"{verb} {done} job(s).", messages.SUCCESS)

    @admin.action(description="Queue for scanning")
    def queue_jobs(self, request, queryset):
        self._run_action(request, queryset, services.scan_job_queue, "Queued")

    @admin.action(description="Cancel")
    def cancel_jobs(self, request, queryset):
        self._run_action(request, queryset, services.scan_job_cancel, "Canceled")

    @admin.action(description="Commit into the inbox")
    def commit_jobs(self, request, queryset):
        self._run_action(
            request, queryset, services.scan_job_commit, "Committed", notice=_duplicate_notice
        )

    @admin.action(description="Resume after a lost agent (queue again, keep the batches)")
    def resume_jobs(self, request, queryset):
        self._run_action(request, queryset, services.scan_job_resume, "Queued again")

    @admin.action(description="Assemble the batches kept after a lost agent")
    def assemble_kept_jobs(self, request, queryset):
        self._run_action(
            request, queryset, services.scan_job_assemble_kept, "Assembling the kept batches of"
        )


@admin.register(ScanJobBatch)
class ScanJobBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "job", "batch_seq", "status", "page_count", "size_bytes", "created_at"]
    list_filter = ["status"]
    search_fields = ["=job__id", "sha256"]
    list_select_related = ["job"]
    actions = ["discard_batches"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "<int:batch_id>/discard/",
                self.admin_site.admin_view(require_POST(self.discard_view)),
                name="scanning_scanjobbatch_discard",
            ),
            *super().get_urls(),
        ]

    def discard_view(self, request, batch_id: int):
        if not request.user.has_perm("scanning.operate_scanner"):
            raise PermissionDenied
        batch = get_object_or_404(ScanJobBatch, pk=batch_id)
        try:
            services.scan_batch_discard(batch_id=batch.pk, actor=request.user)
        except (ApplicationError, ValidationError) as error:
            self.message_user(request, _error_text(error), messages.ERROR)
        else:
            self.message_user(
                request,
                f"Batch {batch.batch_seq} discarded; the agent scans it again.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:scanning_scanjob_change", args=[batch.job_id]))

    @admin.action(description="Discard (jammed batch)")
    def discard_batches(self, request, queryset):
        if not request.user.has_perm("scanning.operate_scanner"):
            raise PermissionDenied
        for batch in queryset.order_by("pk"):
            try:
                services.scan_batch_discard(batch_id=batch.pk, actor=request.user)
            except (ApplicationError, ValidationError) as error:
                self.message_user(
                    request, f"Batch {batch.pk}: {_error_text(error)}", messages.ERROR
                )
            else:
                self.message_user(request, f"Batch {batch.pk} discarded.", messages.SUCCESS)


@admin.register(ScanAgentStatus)
class ScanAgentStatusAdmin(admin.ModelAdmin):
    list_display = ["agent", "last_heartbeat", "agent_version", "current_job", "updated_at"]
    readonly_fields = list_display

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ScanAgent)
class ScanAgentAdmin(admin.ModelAdmin):
    """Agents are created with ``manage.py scanning_create_agent`` (the token
    is shown once there); here they can be deactivated."""

    list_display = ["name", "token_prefix", "is_active", "last_seen_at", "created_at"]
    fields = ["name", "token_prefix", "is_active", "last_seen_at", "created_by", "created_at"]
    readonly_fields = ["name", "token_prefix", "last_seen_at", "created_by", "created_at"]

    def has_add_permission(self, request):
        return False


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "page_count", "in_inbox", "source_job", "created_at"]
    list_filter = ["in_inbox"]
    search_fields = ["title", "sha256"]
    readonly_fields = [
        "pdf_link",
        "sha256",
        "page_count",
        "size_bytes",
        "source_job",
        "created_by",
        "created_at",
    ]
    fields = ["title", "in_inbox", *readonly_fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="PDF")
    def pdf_link(self, document: Document):
        # The authenticated file view (it checks scanning.view_document), never
        # MEDIA_URL: media is not served, and must not be, to just anyone.
        url = reverse("scanning:document-file", kwargs={"pk": document.pk})
        return format_html(
            '<a href="{}" target="_blank">PDF ({} pages)</a>', url, document.page_count
        )
