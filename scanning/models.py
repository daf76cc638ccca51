from __future__ import annotations

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q, Value

from scanning.choices import (
    ACTIVE_STATUSES,
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    SCAN_BATCH_STATES,
    SCAN_JOB_STATES,
    BatchStatus,
    ScanJobStatus,
    ScanMode,
    ScanSource,
)
from scanning.errors import ScannerBusy

SETTINGS_KEYS = ("mode", "resolution", "source")


def scan_settings_errors(value) -> dict[str, str]:
    """``settings`` is a small JSON profile: mode, resolution (dpi) and source.
    Every problem at once, keyed by the setting (empty when valid)."""
    if not isinstance(value, dict):
        return {"settings": "Scan settings must be an object."}
    errors: dict[str, str] = {}
    unknown = sorted(set(value) - set(SETTINGS_KEYS))
    if unknown:
        errors["settings"] = f"Unknown settings: {', '.join(unknown)}."
    missing = [key for key in SETTINGS_KEYS if key not in value]
    for key in missing:
        errors[key] = "This setting is required."
    if "mode" in value and value["mode"] not in ScanMode.values:
        errors["mode"] = f"Must be one of {', '.join(ScanMode.values)}."
    if "source" in value and value["source"] not in ScanSource.values:
        errors["source"] = f"Must be one of {', '.join(ScanSource.values)}."
    if "resolution" in value:
        resolution = value["resolution"]
        if (
            isinstance(resolution, bool)
            or not isinstance(resolution, int)
            or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION
        ):
            errors["resolution"] = (
                f"Must be a whole number of dpi from {MIN_RESOLUTION} to {MAX_RESOLUTION}."
            )
    return errors


def validate_scan_settings(value) -> None:
    errors = scan_settings_errors(value)
    if errors:
        raise ValidationError(
            [
                ValidationError(
                    "%(key)s: %(message)s", code="invalid", params={"key": key, "message": message}
                )
                for key, message in errors.items()
            ]
        )


def _batch_upload_to(batch: ScanJobBatch, filename: str) -> str:
    return f"scanning/jobs/{batch.job_id}/batch-{batch.batch_seq:04d}-{batch.sha256[:12]}.pdf"


def _assembled_upload_to(job: ScanJob, filename: str) -> str:
    return f"scanning/jobs/{job.pk}/assembled-{job.file_hash[:12]}.pdf"


def _document_upload_to(document: Document, filename: str) -> str:
    return f"documents/{document.sha256[:2]}/{document.sha256}.pdf"


class ScanAgent(models.Model):
    """A credential for a scanner host's agent. Only a sha256 of the token is
    stored: tokens are 256-bit random strings, so a fast hash is enough (no
    dictionary to attack) and lets the token be looked up by its hash."""

    name = models.CharField(max_length=100, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    token_prefix = models.CharField(
        max_length=12, help_text="The token's first characters, to recognise it."
    )
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def actor_label(self) -> str:
        """How audit rows name this agent (``config.transitions.actor_label``)."""
        return f"agent:{self.name}"


class ScanJob(models.Model):
    """One scanning session = one logical document: N batches → one PDF → the inbox."""

    state_machine = SCAN_JOB_STATES

    title = models.CharField(max_length=300)
    settings = models.JSONField(validators=[validate_scan_settings])
    status = models.CharField(
        max_length=20, choices=ScanJobStatus.choices, default=ScanJobStatus.DRAFT
    )
    # Kept batches (scanned, not discarded).
    batch_count = models.PositiveIntegerField(default=0)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    # The assembled PDF (preview) and its sha256, the identity of the commit.
    file = models.FileField(upload_to=_assembled_upload_to, max_length=500, blank=True)
    file_hash = models.CharField(max_length=64, blank=True)
    document = models.ForeignKey(
        "Document", null=True, blank=True, on_delete=models.SET_NULL, related_name="scan_jobs"
    )
    agent = models.ForeignKey(
        ScanAgent, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    error_code = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Wall-clock idle timeout of a ``ready`` job counts from here.
    last_activity_at = models.DateTimeField(null=True, blank=True)
    # Job progress (separate from agent liveness, which is ScanAgentStatus).
    last_progress_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("operate_scanner", "Can create, queue, cancel and commit scan jobs")]
        indexes = [
            models.Index(
                fields=["queued_at", "id"],
                condition=Q(status=ScanJobStatus.QUEUED),
                name="scanjob_queued",
            ),
            models.Index(fields=["status", "-created_at"], name="scanjob_status_created"),
            # Lists read newest first: this index is that order (issue 11).
            models.Index(fields=["-created_at", "-id"], name="scanjob_newest"),
        ]
        constraints = [
            # The scanner is a singleton: a unique index over a constant, limited
            # to active rows, allows at most one active row. Works on SQLite and
            # PostgreSQL alike (CREATE UNIQUE INDEX … ((1)) WHERE status IN …).
            models.UniqueConstraint(
                Value(1),
                condition=Q(status__in=ACTIVE_STATUSES),
                name="scanjob_single_active",
                violation_error_message="Another scan job holds the scanner.",
            ),
            models.CheckConstraint(
                condition=Q(status__in=ScanJobStatus.values), name="scanjob_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def transition_refused(self, target: str, error: Exception) -> Exception | None:
        """The single-active index refused a move into an active state: another
        job holds the scanner (``config.transitions`` calls this, with the job
        as it was before the move)."""
        if target not in ACTIVE_STATUSES:
            return None
        holder = (
            ScanJob.objects.filter(status__in=ACTIVE_STATUSES)
            .exclude(pk=self.pk)
            .values_list("pk", flat=True)
            .first()
        )
        return ScannerBusy(
            f"Scan job {self.pk} cannot become {target}: another job holds the scanner.",
            extra={"current_state": self.status, "requested_state": target, "active_job": holder},
        )

    @property
    def duplicate_of(self) -> Document | None:
        """The document this job's file turned out to be, when the commit found
        it already in the inbox (created by another job) instead of creating it."""
        document = self.document
        if document is None or document.source_job_id == self.pk:
            return None
        return document


class ScanJobBatch(models.Model):
    """One pass of the scanner (one ADF stack). ``batch_seq`` is the join order."""

    state_machine = SCAN_BATCH_STATES

    job = models.ForeignKey(ScanJob, on_delete=models.CASCADE, related_name="batches")
    batch_seq = models.PositiveIntegerField()
    status = models.CharField(
        max_length=20, choices=BatchStatus.choices, default=BatchStatus.SCANNED
    )
    file = models.FileField(upload_to=_batch_upload_to, max_length=500)
    page_count = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    discarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job_id", "batch_seq"]
        constraints = [
            models.UniqueConstraint(fields=["job", "batch_seq"], name="uniq_scanbatch_job_seq"),
            models.CheckConstraint(condition=Q(batch_seq__gte=1), name="scanbatch_seq_positive"),
            models.CheckConstraint(
                condition=Q(status__in=BatchStatus.values), name="scanbatch_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.job_id} batch {self.batch_seq} ({self.status})"


class ScanAgentStatus(models.Model):
    """Agent liveness: one row (a check constraint keeps it to id 1), separate
    from job progress so a queued job is never mistaken for a stalled one."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    agent = models.ForeignKey(
        ScanAgent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    agent_version = models.CharField(max_length=100, blank=True)
    current_job = models.ForeignKey(
        ScanJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "scan agent status"
        verbose_name_plural = "scan agent status"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="scanagentstatus_singleton")]

    def __str__(self) -> str:
        return f"agent {self.agent or '—'} last seen {self.last_heartbeat or 'never'}"


class Document(models.Model):
    """A committed document. The sha256 of the file is its identity: the same
    file committed twice is one document."""

    title = models.CharField(max_length=300)
    file = models.FileField(upload_to=_document_upload_to, max_length=500)
    sha256 = models.CharField(max_length=64, unique=True)
    page_count = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    in_inbox = models.BooleanField(default=True, help_text="Not yet filed by a person.")
    source_job = models.ForeignKey(
        ScanJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["in_inbox", "-created_at"], name="document_inbox"),
            # Lists read newest first: this index is that order (issue 11).
            models.Index(fields=["-created_at", "-id"], name="document_newest"),
        ]

    def __str__(self) -> str:
        return self.title


class ScanJobEvent(models.Model):
    """Audit: every state change of a job, written in the same transaction."""

    job = models.ForeignKey(ScanJob, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150)
    code = models.CharField(max_length=100, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job_id", "created_at", "id"]

    def __str__(self) -> str:
        return (
            f"job {self.job_id}: {self.from_status or '∅'} → {self.to_status} by {self.actor_name}"
        )
