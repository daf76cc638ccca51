from django.db import models


class Trigger(models.TextChoices):
    ON_CREATE = "on_create", "On create"
    ON_UPDATE = "on_update", "On update"
    ON_DELETE = "on_delete", "On delete"
    SCHEDULED = "scheduled", "Scheduled"


EVENT_TRIGGERS = (Trigger.ON_CREATE, Trigger.ON_UPDATE, Trigger.ON_DELETE)


class EntityKind(models.TextChoices):
    TABLE = "table", "Table"
    VIEW = "view", "View"


class EventStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"


class ExecutionStatus(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILED = "failed", "Failed"
    PARTIAL = "partial", "Partial"
    # Not in the seed: a rule that matched but did not run (a parent rule
    # failed, or the chain guard stopped it); the reason is in error_message.
    SKIPPED = "skipped", "Skipped"


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
RETRYABLE_BY_HAND_STATUSES = (
    DeliveryStatus.PENDING,
    DeliveryStatus.RETRYING,
    DeliveryStatus.FAILED,
    DeliveryStatus.BOUNCED,
)


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


# Every allowed move of an alert as a whole; anything else is an InvalidTransition.
ALERT_TRANSITIONS: dict[str, frozenset[str]] = {
    AlertStatus.ACTIVE: frozenset(
        {
            AlertStatus.ACKNOWLEDGED,
            AlertStatus.DISMISSED,
            AlertStatus.RESOLVED,
            AlertStatus.EXPIRED,
        }
    ),
    AlertStatus.ACKNOWLEDGED: frozenset(
        {AlertStatus.DISMISSED, AlertStatus.RESOLVED, AlertStatus.EXPIRED}
    ),
    AlertStatus.DISMISSED: frozenset(),
    AlertStatus.RESOLVED: frozenset(),
    AlertStatus.EXPIRED: frozenset(),
}
CLOSED_ALERT_STATUSES = tuple(s for s, moves in ALERT_TRANSITIONS.items() if not moves)


def alert_statuses_leading_to(target: str) -> list[str]:
    """The states an alert may move to ``target`` from."""
    return [status for status, moves in ALERT_TRANSITIONS.items() if target in moves]


class RecipientType(models.TextChoices):
    USER = "user", "User"
    ROLE = "role", "Role (group)"


class AcknowledgementKind(models.TextChoices):
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    DISMISSED = "dismissed", "Dismissed"
