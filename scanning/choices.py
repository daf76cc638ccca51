from dataclasses import dataclass

from django.db import models

from config.transitions import StateMachine


class ScanJobStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    QUEUED = "queued", "Queued"
    READY = "ready", "Ready"
    SCANNING = "scanning", "Scanning"
    ASSEMBLING = "assembling", "Assembling"
    PREVIEW = "preview", "Preview"
    COMMITTING = "committing", "Committing"
    COMMITTED = "committed", "Committed"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


# The scanner is one machine: at most one job holds it (a partial unique index
# enforces this); every other job waits in QUEUED.
ACTIVE_STATUSES = (
    ScanJobStatus.READY,
    ScanJobStatus.SCANNING,
    ScanJobStatus.ASSEMBLING,
    ScanJobStatus.PREVIEW,
    ScanJobStatus.COMMITTING,
)
TERMINAL_STATUSES = (ScanJobStatus.COMMITTED, ScanJobStatus.FAILED, ScanJobStatus.CANCELED)
# Where the agent may report that it failed (the machine also lets assembly
# and a broken commit fail a job).
AGENT_FAILABLE_STATUSES = (ScanJobStatus.READY, ScanJobStatus.SCANNING)

# Every move a scan job may make. Services name only the target; where one
# allows fewer sources than this table (an agent's upload, finish or failure;
# queueing a draft), it checks that itself. Moves into an active state may
# still be refused by the single-active index: ``ScanJob.transition_refused``
# turns that into ``ScannerBusy``.
SCAN_JOB_STATES = StateMachine(
    {
        None: {ScanJobStatus.DRAFT},
        ScanJobStatus.DRAFT: {ScanJobStatus.QUEUED, ScanJobStatus.CANCELED},
        # claimed by an agent
        ScanJobStatus.QUEUED: {ScanJobStatus.READY, ScanJobStatus.CANCELED},
        ScanJobStatus.READY: {
            ScanJobStatus.SCANNING,  # a batch started
            ScanJobStatus.ASSEMBLING,  # the agent finished
            ScanJobStatus.FAILED,  # the agent failed
            ScanJobStatus.CANCELED,  # or sat idle too long
        },
        ScanJobStatus.SCANNING: {
            ScanJobStatus.READY,  # the batch uploaded
            ScanJobStatus.FAILED,  # the agent failed, was lost or stalled
            ScanJobStatus.CANCELED,
        },
        ScanJobStatus.ASSEMBLING: {
            ScanJobStatus.PREVIEW,
            ScanJobStatus.FAILED,
            ScanJobStatus.CANCELED,
        },
        ScanJobStatus.PREVIEW: {ScanJobStatus.COMMITTING, ScanJobStatus.CANCELED},
        # A commit that broke off is finished by committing again; a failed
        # copy goes back to preview (or fails when the PDF is gone). It may be
        # canceled so it never holds the scanner for good, unless its document
        # already exists (``scan_job_cancel`` refuses then: commit again).
        ScanJobStatus.COMMITTING: {
            ScanJobStatus.COMMITTING,
            ScanJobStatus.COMMITTED,
            ScanJobStatus.PREVIEW,
            ScanJobStatus.FAILED,
            ScanJobStatus.CANCELED,
        },
        # Only a failed assembly (assemble again) or a lost agent (resume,
        # or assemble the kept batches): the services check the error code.
        ScanJobStatus.FAILED: {ScanJobStatus.QUEUED, ScanJobStatus.ASSEMBLING},
    },
    subject="Scan job",
    invalid_code="scan_job.invalid_transition",
    audit_model="scanning.ScanJobEvent",
    audit_fk="job",
    reason_field="message",
)


@dataclass(frozen=True)
class ProcessActor:
    """A part of Bureau acting on its own: audit rows name it by its label
    (``config.transitions.actor_label``); it is nobody's user."""

    actor_label: str


ASSEMBLY_TASK = ProcessActor("task:assembly")
AGENT_CHECK_SCHEDULE = ProcessActor("schedule:scanning.check_agent")
PURGE_FILES_SCHEDULE = ProcessActor("schedule:scanning.purge_files")
MANAGE_PY = ProcessActor("manage.py")


class BatchStatus(models.TextChoices):
    SCANNED = "scanned", "Scanned"
    DISCARDED = "discarded", "Discarded"


# A jammed batch is set aside (its file kept) and scanned again under the next
# batch_seq. The job's event records the discard: a batch has no audit table.
SCAN_BATCH_STATES = StateMachine(
    {None: {BatchStatus.SCANNED}, BatchStatus.SCANNED: {BatchStatus.DISCARDED}},
    subject="Batch",
    invalid_code="scan_batch.invalid_transition",
)


class ScanMode(models.TextChoices):
    COLOR = "color", "Color"
    GRAY = "gray", "Gray"
    LINEART = "lineart", "Line art"


class ScanSource(models.TextChoices):
    FLATBED = "flatbed", "Flatbed"
    ADF = "adf", "ADF"
    ADF_DUPLEX = "adf_duplex", "ADF duplex"


MIN_RESOLUTION = 75
MAX_RESOLUTION = 1200
DEFAULT_SCAN_SETTINGS = {
    "mode": ScanMode.GRAY.value,
    "resolution": 300,
    "source": ScanSource.ADF.value,
}


class ErrorCode:
    """Stable codes stored on jobs and returned by the API."""

    AGENT_LOST = "agent.lost"
    AGENT_ERROR = "agent.error"
    IDLE_TIMEOUT = "scan_job.idle_timeout"
    STALLED = "scan_job.stalled"
    ASSEMBLY_FAILED = "scan_job.assembly_failed"
    CANCELED_BY_OPERATOR = "scan_job.canceled"
    FILE_MISSING = "scan_job.file_missing"
    COMMIT_FAILED = "scan_job.commit_failed"
    DOCUMENT_EXISTS = "scan_job.document_exists"
    NOT_RESUMABLE = "scan_job.not_resumable"
    DUPLICATE_DOCUMENT = "scan_job.duplicate_document"


# A job failed for one of these lost its agent, not its batches: an operator
# may resume it (re-queue, scanning goes on at the next batch_seq) or
# assemble the batches it kept.
RESUMABLE_ERROR_CODES = (ErrorCode.AGENT_LOST, ErrorCode.STALLED)
