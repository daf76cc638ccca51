from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from automation import conf
from automation.actions import ActionContext
from automation.actions import recipients as recipient_refs
from automation.choices import ALERT_STATES, AlertStatus, RecipientType, Severity
from automation.models import Alert, AlertRecipient
from config.transitions import TransitionBatch, lock_many

_KEYS = {
    "alert_type",
    "severity",
    "title",
    "message",
    "recipients",
    "context",
    "resolve_prior",
    "expires_in_minutes",
}


class CreateAlertAction:
    """create_alert: alert_type, severity, title, message, recipients {users,
    roles}, context, resolve_prior (resolve this rule's active alerts of the
    same type for the same row first), expires_in_minutes."""

    key = "create_alert"
    label = "Create an alert"

    def validate(self, config: dict[str, Any], *, model) -> None:
        errors = []
        unknown = sorted(set(config) - _KEYS)
        if unknown:
            errors.append(f"create_alert: unknown keys {', '.join(unknown)}.")
        for key in ("alert_type", "title", "message"):
            if not isinstance(config.get(key), str) or not config.get(key, "").strip():
                errors.append(f"create_alert: {key} is required (text).")
        severity = config.get("severity", Severity.MEDIUM)
        if severity not in Severity.values and "{{" not in str(severity):
            errors.append(
                f"create_alert: severity {severity!r} is not one of {', '.join(Severity.values)}."
            )
        if not isinstance(config.get("context", {}), dict):
            errors.append("create_alert: context must be an object.")
        if not isinstance(config.get("resolve_prior", False), bool):
            errors.append("create_alert: resolve_prior must be true or false.")
        expires = config.get("expires_in_minutes")
        if expires is not None and (
            isinstance(expires, bool)
            or not isinstance(expires, int)
            or not 1 <= expires <= conf.MAX_DB_INT
        ):
            errors.append(
                f"create_alert: expires_in_minutes must be an integer from 1 to {conf.MAX_DB_INT}."
            )
        try:
            users, groups = recipient_refs.resolve(config.get("recipients"))
            if not users and not groups:
                errors.append("create_alert: recipients needs at least one user or role.")
        except ValidationError as error:
            errors.extend(f"create_alert: {m}" for m in error.messages)
        if errors:
            raise ValidationError(errors)

    def _severity(self, config) -> str:
        severity = str(config.get("severity") or Severity.MEDIUM)
        if severity not in Severity.values:
            raise ValidationError(f"create_alert: severity {severity!r} is not valid.")
        return severity

    def _prior(self, config, ctx: ActionContext):
        return Alert.objects.filter(
            alert_type=config["alert_type"],
            source_entity_name=ctx.entity_name,
            source_entity_id=ctx.object_pk,
            source_rule=ctx.rule,
            status__in=ALERT_STATES.sources(AlertStatus.RESOLVED),
        )

    def preview(self, config: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        users, groups = recipient_refs.resolve(config.get("recipients"))
        return {
            "would_create_alert": {
                "alert_type": config["alert_type"],
                "severity": self._severity(config),
                "title": str(config["title"]),
                "message": str(config["message"]),
                "recipients": {
                    "users": [u.get_username() for u in users],
                    "roles": [g.name for g in groups],
                },
            },
            "would_resolve_prior": self._prior(config, ctx).count()
            if config.get("resolve_prior")
            else 0,
        }

    def run(self, config: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        users, groups = recipient_refs.resolve(config.get("recipients"), cache=ctx.cache)
        resolved = 0
        if config.get("resolve_prior"):
            prior = lock_many(self._prior(config, ctx))
            reason = f"resolved by rule {ctx.rule.name!r}" + (
                f" (execution {ctx.execution.pk})" if ctx.execution else ""
            )
            with TransitionBatch() as batch:
                for alert in prior:
                    batch.move(alert, AlertStatus.RESOLVED, reason=reason)
            resolved = len(prior)
        expires = config.get("expires_in_minutes")
        alert = Alert(
            alert_type=str(config["alert_type"])[:100],
            severity=self._severity(config),
            title=str(config["title"])[:300],
            message=str(config["message"]),
            context=config.get("context") or {},
            source_entity_name=ctx.entity_name,
            source_entity_id=ctx.object_pk,
            source_rule=ctx.rule,
            source_execution=ctx.execution,
            expires_date=timezone.now() + timedelta(minutes=expires) if expires else None,
        )
        recipients = [
            AlertRecipient(alert=alert, recipient_type=RecipientType.USER, user=u) for u in users
        ] + [
            AlertRecipient(alert=alert, recipient_type=RecipientType.ROLE, group=g) for g in groups
        ]
        result = {"alert_id": None, "resolved_prior": resolved}
        if ctx.writes is not None and not config.get("resolve_prior"):
            # Inserted with the rest of the batch; alert_id is filled in then.
            # (An alert that resolves earlier ones is written at once: a later
            # event of the batch must find it to resolve it.)
            ctx.writes.add_alert(alert, recipients, result)
            return result
        alert.save()
        AlertRecipient.objects.bulk_create(recipients)
        result["alert_id"] = alert.pk
        return result
