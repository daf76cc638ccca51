from django.db import models

from config.transitions import StateMachine


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)

# A run is its own record (no audit table): its moves are conditional UPDATEs.
RUN_STATES = StateMachine(
    {
        None: {RunStatus.QUEUED},
        RunStatus.QUEUED: {RunStatus.RUNNING, RunStatus.COMPLETED},
        RunStatus.RUNNING: {RunStatus.COMPLETED},
    },
    subject="Operation run",
    invalid_code="operation.invalid_transition",
)


class RunOutcome(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIALLY_SUCCEEDED = "partially_succeeded", "Partially succeeded"
    FAILED = "failed", "Failed"


TERMINAL_OUTCOMES = (RunOutcome.SUCCEEDED, RunOutcome.PARTIALLY_SUCCEEDED, RunOutcome.FAILED)


class RunScope(models.TextChoices):
    TENANT = "tenant", "Tenant"
    WORKSPACE = "workspace", "Workspace"


class MemberRole(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


# Who may create tenants in a workspace (superusers may anywhere).
TENANT_CREATOR_ROLES = (MemberRole.OPERATOR, MemberRole.ADMIN)
