from __future__ import annotations

import logging
import weakref
from typing import Any

from asgiref.local import Local
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from automation import conf
from automation.actions import ActionContext
from automation.actions import recipients as recipient_refs
from automation.choices import PEOPLE_CHANNELS, DeliveryChannel, DeliveryStatus
from automation.models import NotificationDelivery
from automation.webhooks import MASK, is_masked, mask_webhook_url, webhook_recipient

logger = logging.getLogger(__name__)

_KEYS = {
    "channels",
    "recipients",
    "subject",
    "message",
    "webhook_url",
    "secret_env",
    "max_attempts",
}


def _secret_source_errors(config: dict[str, Any], *, webhook: bool) -> list[str]:
    """``secret_env`` names one of the configured webhook secrets, and a
    webhook is saved only when the secret it will be signed with is set."""
    source = config.get("secret_env") or None
    allowed = conf.webhook_secret_sources()
    if source is not None and source not in allowed:
        shown = str(source)[:100] if isinstance(source, str) else source
        return [
            f"send_notification: secret_env {shown!r} is not a webhook secret; "
            f"use one of {', '.join(allowed)} (AUTOMATION_WEBHOOK_SECRETS lists them)."
        ]
    if webhook and not conf.webhook_secret(source):
        return [
            f"send_notification: no webhook secret is configured in "
            f"{source or conf.DEFAULT_WEBHOOK_SECRET}; set it before saving a webhook, "
            "which is always signed."
        ]
    return []


class SendNotificationAction:
    """send_notification: channels (email, sms, push, in_app, webhook),
    recipients {users, roles} for all but webhook (SMS and push go to the
    number and token in each person's notification profile), webhook_url for
    webhook (optional secret_env:
    which of the configured webhook secrets signs it), subject, message,
    max_attempts. One delivery row per recipient and channel; sending happens
    after commit and is retried with backoff."""

    key = "send_notification"
    label = "Send a notification"

    def validate(self, config: dict[str, Any], *, model) -> None:
        errors = []
        unknown = sorted(set(config) - _KEYS)
        if unknown:
            errors.append(f"send_notification: unknown keys {', '.join(unknown)}.")
        channels = config.get("channels")
        if not isinstance(channels, list) or not channels:
            errors.append("send_notification: channels must be a non-empty list.")
            channels = []
        bad = [c for c in channels if not isinstance(c, str) or c not in DeliveryChannel.values]
        if bad:
            errors.append(
                f"send_notification: unknown channel(s) {', '.join(map(str, bad))}; "
                f"use {', '.join(DeliveryChannel.values)}."
            )
        if not isinstance(config.get("message"), str) or not config.get("message", "").strip():
            errors.append("send_notification: message is required (text).")
        if bad:
            channels = [c for c in channels if c not in bad]  # unhashable ones included
        people_channels = set(PEOPLE_CHANNELS) & set(channels)
        if people_channels:
            try:
                users, groups = recipient_refs.resolve(config.get("recipients"))
                if not users and not groups:
                    errors.append(
                        "send_notification: recipients needs a user or role for "
                        + ", ".join(sorted(people_channels))
                        + "."
                    )
            except ValidationError as error:
                errors.extend(f"send_notification: {m}" for m in error.messages)
        if DeliveryChannel.WEBHOOK in channels:
            url = config.get("webhook_url")
            if is_masked(url):
                errors.append(
                    f"send_notification: webhook_url {mask_webhook_url(url)!r} is masked "
                    f"({MASK}), as Bureau shows it; "
                    "give the full URL (or send back the one you were shown unchanged)."
                )
            elif not isinstance(url, str) or "{{" not in url:
                try:
                    URLValidator(schemes=["http", "https"])(url)
                except ValidationError:
                    errors.append(
                        f"send_notification: webhook_url {mask_webhook_url(url)!r} "
                        "is not an http(s) URL."
                    )
        errors.extend(_secret_source_errors(config, webhook=DeliveryChannel.WEBHOOK in channels))
        max_attempts = config.get("max_attempts")
        if max_attempts is not None and (
            isinstance(max_attempts, bool)
            or not isinstance(max_attempts, int)
            or not 1 <= max_attempts <= conf.MAX_DB_INT
        ):
            errors.append(
                f"send_notification: max_attempts must be an integer from 1 to {conf.MAX_DB_INT}."
            )
        if errors:
            raise ValidationError(errors)

    def planned(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """One entry per (channel, recipient)."""
        plan = []
        channels = config.get("channels") or []
        people = []
        if set(PEOPLE_CHANNELS) & set(channels):
            people = recipient_refs.users_of(*recipient_refs.resolve(config.get("recipients")))
        for channel in channels:
            if channel == DeliveryChannel.WEBHOOK:
                url = str(config["webhook_url"])
                URLValidator(schemes=["http", "https"])(url)
                plan.append({"channel": channel, "recipient": webhook_recipient(url), "url": url})
            else:
                for user in people:
                    plan.append(
                        {
                            "channel": channel,
                            "recipient": str(user.pk),
                            "user": user,
                        }
                    )
        return plan

    def preview(self, config: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        return {
            "would_deliver": [
                {"channel": p["channel"], "recipient": p["recipient"]} for p in self.planned(config)
            ],
            "subject": str(config.get("subject") or ""),
            "message": str(config["message"]),
        }

    def run(self, config: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        now = timezone.now()
        max_attempts = config.get("max_attempts") or conf.delivery_max_attempts()
        subject = str(config.get("subject") or ctx.rule.name)
        message = str(config["message"])
        rows = []
        for planned in self.planned(config):
            payload: dict[str, Any] = {"subject": subject, "message": message}
            if planned["channel"] == DeliveryChannel.PUSH:
                payload["data"] = {
                    "rule_id": str(ctx.rule.pk),
                    "execution_id": str(ctx.execution.pk) if ctx.execution else "",
                    "entity": ctx.entity_name,
                    "object_pk": ctx.object_pk,
                }
            if planned["channel"] == DeliveryChannel.WEBHOOK:
                payload["url"] = planned["url"]
                payload["secret_env"] = config.get("secret_env") or ""
                payload["body"] = {
                    "rule": {"id": ctx.rule.pk, "name": ctx.rule.name},
                    "execution_id": ctx.execution.pk if ctx.execution else None,
                    "entity": ctx.entity_name,
                    "object_pk": ctx.object_pk,
                    "trigger": ctx.trigger,
                    "subject": subject,
                    "message": message,
                }
            rows.append(
                NotificationDelivery(
                    execution=ctx.execution,
                    rule=ctx.rule,
                    action=ctx.action,
                    recipient=planned["recipient"],
                    recipient_user=planned.get("user"),
                    channel=planned["channel"],
                    status=DeliveryStatus.PENDING,
                    payload=payload,
                    max_attempts=max_attempts,
                    next_attempt_at=now,
                )
            )
        NotificationDelivery.objects.bulk_create(rows)
        ids = [row.pk for row in rows]
        if ids:
            send_on_commit(ids)
        return {"deliveries": ids}


def queue_delivery_sending(ids: list[int]) -> None:
    """Queue sending tasks for ``ids``, AUTOMATION_DELIVERY_TASK_SIZE a task:
    deliveries are independent, so several workers may send them side by side."""
    size = conf.delivery_task_size()
    try:
        for start in range(0, len(ids), size):
            async_task(
                "automation.tasks.send_deliveries_task",
                list(ids[start : start + size]),
                task_name="automation.send",
            )
    except Exception:  # noqa: BLE001 - the retry schedule sends what is due
        logger.exception("could not queue delivery sending; the retry schedule will")


class _SendingOnCommit:
    """The on-commit hook that queues the sending of every delivery a
    transaction created (an outbox batch creates many: one hook, a few tasks,
    not a task per execution)."""

    __slots__ = ("ids", "__weakref__")

    def __init__(self) -> None:
        self.ids: list[int] | None = []

    def __call__(self) -> None:
        ids, self.ids = self.ids, None
        queue_delivery_sending(ids)


# Per connection, as automation.events' outbox nudge: the hook registered by
# the open transaction, alive until it commits (runs) or is rolled back with
# the savepoint that registered it. Ids from a savepoint rolled back later are
# harmless: their rows do not exist, and a send finds nothing to claim.
_sending = Local()


def send_on_commit(ids: list[int]) -> None:
    """Queue the sending of ``ids`` when the current transaction commits."""
    ref = getattr(_sending, "hook", None)
    hook = ref() if ref is not None else None
    if hook is not None and hook.ids is not None:
        hook.ids.extend(ids)
        return
    hook = _SendingOnCommit()
    hook.ids.extend(ids)
    _sending.hook = weakref.ref(hook)
    transaction.on_commit(hook, robust=True)
