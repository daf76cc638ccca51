from django.db import models

from config.transitions import StateMachine


class Trigger(models.TextChoices):
    ON_CREATE = "on_create", "On create"
    ON_UPDATE = "on_update", "On update"
    ON_DELETE = "on_delete", "On delete"
    SCHEDULED = "scheduled", "Scheduled"
    # Not in the seed: an external system posted a signed event (issue 13).
    INBOUND = "inbound", "Inbound webhook"


EVENT_TRIGGERS = (Trigger.ON_CREATE, Trigger.ON_UPDATE, Trigger.ON_DELETE)


class EntityKind(models.TextChoices):
    TABLE = "table", "Table"
    VIEW = "view", "View"
    # Not in the seed: an inbound webhook source, whose events carry the posted JSON.
    INBOUND = "inbound", "Inbound webhook source"


class InboundRefusal(models.TextChoices):
    """Why a post to an inbound source was refused (each is counted on the source)."""

    SIGNATURE = "signature", "Bad or missing signature"
    INACTIVE = "inactive", "Source inactive"
    TIMESTAMP = "timestamp", "Stale, future or malformed timestamp"
    BODY = "body", "Malformed body or idempotency key"
    TOO_LARGE = "too_large", "Body too large"
    REPEAT = "repeat", "Repeated idempotency key"


class EventStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"


# The outbox row: processed by a worker, failed after its last attempt; a
# replay (by an operator) processes it again, whatever its state. No audit
# table: the row keeps its attempts, note and processed_at.
EVENT_STATES = StateMachine(
    {
        None: {EventStatus.PENDING},
        EventStatus.PENDING: {EventStatus.PROCESSED, EventStatus.FAILED},
        EventStatus.FAILED: {EventStatus.PROCESSED},
        EventStatus.PROCESSED: {EventStatus.PROCESSED},
    },
    subject="Event",
    invalid_code="automation.event_transition",
)


class ExecutionStatus(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILED = "failed", "Failed"
    PARTIAL = "partial", "Partial"
    # Not in the seed: a rule that matched but did not run (a parent rule
    # failed, or the chain guard stopped it); the reason is in error_message.
    SKIPPED = "skipped", "Skipped"


_RUN_OUTCOMES = {ExecutionStatus.SUCCESS, ExecutionStatus.PARTIAL, ExecutionStatus.FAILED}
# An execution is created as ``success`` (or ``skipped``: it will not run) in
# the transaction that runs its actions, so the row exists for them to point
# at; their outcome is its first move, and nobody sees the row before it. A
# replay finishes a partial or failed one. No audit table: the execution is
# the record (its per-action detail, error and duration).
EXECUTION_STATES = StateMachine(
    {
        None: {ExecutionStatus.SUCCESS, ExecutionStatus.SKIPPED},
        ExecutionStatus.SUCCESS: _RUN_OUTCOMES,
        ExecutionStatus.PARTIAL: _RUN_OUTCOMES,
        ExecutionStatus.FAILED: _RUN_OUTCOMES,
    },
    subject="Execution",
    invalid_code="automation.execution_transition",
)


class DeliveryChannel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"
    IN_APP = "in_app", "In-app"
    WEBHOOK = "webhook", "Webhook"


# Channels that reach people (recipients: users and roles); a webhook reaches a URL.
PEOPLE_CHANNELS = (
    DeliveryChannel.EMAIL,
    DeliveryChannel.SMS,
    DeliveryChannel.PUSH,
    DeliveryChannel.IN_APP,
)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    BOUNCED = "bounced", "Bounced"
    RETRYING = "retrying", "Retrying"


SENDABLE_DELIVERY_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
_SEND_OUTCOMES = {
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.RETRYING,
    DeliveryStatus.FAILED,
    DeliveryStatus.BOUNCED,
}
# A worker records an attempt's outcome (retrying: it will try again); an
# operator's retry moves a failed or bounced one back to retrying. No audit
# table: deliveries are the hot rows of the worker, and each keeps its own
# record (attempts, sent/delivered/failed times, the last error and the
# provider's answer).
DELIVERY_STATES = StateMachine(
    {
        None: {DeliveryStatus.PENDING},
        DeliveryStatus.PENDING: _SEND_OUTCOMES,
        DeliveryStatus.RETRYING: _SEND_OUTCOMES,
        DeliveryStatus.FAILED: {DeliveryStatus.RETRYING},
        DeliveryStatus.BOUNCED: {DeliveryStatus.RETRYING},
    },
    subject="Delivery",
    invalid_code="automation.delivery_transition",
)
RETRYABLE_BY_HAND_STATUSES = DELIVERY_STATES.sources(DeliveryStatus.RETRYING)


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class AlertStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    DISMISSED = "dismissed", "Dismissed"
    RESOLVED = "resolved", "Resolved"
    # Not in the seed: its expires_date passed while it was live (the sweep).
    EXPIRED = "expired", "Expired"


# The alert as a whole: acknowledged by its first recipient to acknowledge
# it, acknowledged or dismissed by an operator, resolved by a rule (a later
# alert of the same type for the same row), expired by the sweep. Every move
# writes an AlertStatusChange: who or what moved it, and why.
ALERT_STATES = StateMachine(
    {
        None: {AlertStatus.ACTIVE},
        AlertStatus.ACTIVE: {
            AlertStatus.ACKNOWLEDGED,
            AlertStatus.DISMISSED,
            AlertStatus.RESOLVED,
            AlertStatus.EXPIRED,
        },
        AlertStatus.ACKNOWLEDGED: {
            AlertStatus.DISMISSED,
            AlertStatus.RESOLVED,
            AlertStatus.EXPIRED,
        },
    },
    subject="Alert",
    invalid_code="automation.alert_transition",
    audit_model="automation.AlertStatusChange",
    audit_fk="alert",
)
CLOSED_ALERT_STATUSES = tuple(
    s for s in AlertStatus.values if not any(ALERT_STATES.allows(s, t) for t in AlertStatus.values)
)


class RecipientType(models.TextChoices):
    USER = "user", "User"
    ROLE = "role", "Role (group)"


class AcknowledgementKind(models.TextChoices):
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    DISMISSED = "dismissed", "Dismissed"
