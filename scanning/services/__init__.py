"""Every write to scanning data goes through these services, split by concept:

- ``jobs``: the web side of a job (create, edit, queue, rename in preview,
  cancel, discard a jammed batch) and its events that are not moves;
- ``agent``: the agent protocol (heartbeat, claim, start a batch, upload it,
  finish, fail);
- ``assembly``: the merge of the kept batches into the previewed PDF;
- ``commit``: the previewed PDF into the inbox as a Document;
- ``liveness``: the scheduled agent check, and resuming or assembling a job
  whose agent was lost;
- ``files``: the retention purge of scan files;
- ``credentials``: agent tokens.

A job changes state only through ``config.transitions``: the service locks
the row (``lock``; on SQLite the IMMEDIATE transaction already holds the
write lock) and names the target; ``transition`` checks the move against
``scanning.choices.SCAN_JOB_STATES`` (``InvalidTransition``, a 409 with the
current state), saves the changed fields and writes the ``ScanJobEvent``. The
single active slot is the database's to enforce: a move into an active state
that the partial unique index refuses becomes ``ScannerBusy`` (409, through
``ScanJob.transition_refused``). Lock order is always job before batch.

Slow file work (merging, copying into the inbox, storing an upload) happens
outside the transactions, so a big PDF never holds the job lock (or SQLite's
write lock). Reads live in ``scanning.selectors``.
"""

from scanning.services.agent import (
    scan_agent_heartbeat,
    scan_batch_upload,
    scan_job_claim,
    scan_job_fail,
    scan_job_finish,
    scan_job_start_batch,
)
from scanning.services.assembly import (
    scan_job_assemble,
    scan_job_assembly_enqueue,
    scan_job_retry_assembly,
)
from scanning.services.commit import (
    document_duplicate_message,
    document_get_or_create,
    scan_job_commit,
)
from scanning.services.credentials import (
    IssuedCredential,
    scan_agent_authenticate,
    scan_agent_create,
    scan_agent_provision,
    scan_agent_rotate_token,
    scan_agent_token_check,
)
from scanning.services.files import scan_files_purge, stored_file_delete
from scanning.services.jobs import (
    scan_batch_discard,
    scan_job_cancel,
    scan_job_create,
    scan_job_note,
    scan_job_queue,
    scan_job_retitle,
    scan_job_update,
)
from scanning.services.liveness import scan_agent_check, scan_job_assemble_kept, scan_job_resume

__all__ = [
    "IssuedCredential",
    "document_duplicate_message",
    "document_get_or_create",
    "scan_agent_authenticate",
    "scan_agent_check",
    "scan_agent_create",
    "scan_agent_heartbeat",
    "scan_agent_provision",
    "scan_agent_rotate_token",
    "scan_agent_token_check",
    "scan_batch_discard",
    "scan_batch_upload",
    "scan_files_purge",
    "scan_job_assemble",
    "scan_job_assemble_kept",
    "scan_job_assembly_enqueue",
    "scan_job_cancel",
    "scan_job_claim",
    "scan_job_commit",
    "scan_job_create",
    "scan_job_fail",
    "scan_job_finish",
    "scan_job_note",
    "scan_job_queue",
    "scan_job_resume",
    "scan_job_retitle",
    "scan_job_retry_assembly",
    "scan_job_start_batch",
    "scan_job_update",
    "stored_file_delete",
]
