from django.db import models


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
# Where an operator may still cancel. COMMITTING is included so a commit that
# broke off never holds the scanner for good; ``scan_job_cancel`` refuses it
# once the job's document exists (commit again to finish instead).
CANCELABLE_STATUSES = (
    ScanJobStatus.DRAFT,
    ScanJobStatus.QUEUED,
    ScanJobStatus.READY,
    ScanJobStatus.SCANNING,
    ScanJobStatus.ASSEMBLING,
    ScanJobStatus.PREVIEW,
    ScanJobStatus.COMMITTING,
)
# Where the agent may report that it failed.
AGENT_FAILABLE_STATUSES = (ScanJobStatus.READY, ScanJobStatus.SCANNING)


class BatchStatus(models.TextChoices):
    SCANNED = "scanned", "Scanned"
    DISCARDED = "discarded", "Discarded"


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
