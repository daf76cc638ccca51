"""django-q2 entry points for automation. Thin: they call the engine and the
delivery sender; the scheduled ones run inside tracked_run."""

from __future__ import annotations

from automation.deliveries import due_delivery_ids, fail_abandoned_deliveries, send_deliveries
from automation.engine import process_outbox, run_scheduled_rules
from automation.services import alerts_expire
from operations.tracking import tracked_run


def process_outbox_task() -> dict[str, int]:
    """Queued after a transaction that wrote events commits."""
    return process_outbox()


def send_deliveries_task(ids: list[int]) -> dict[str, int]:
    """Queued after a transaction that created deliveries commits."""
    return send_deliveries(ids)


@tracked_run("automation.drain_outbox", initiator_name="schedule")
def drain_outbox_task(tracker) -> dict[str, int]:
    """Every minute: process events a nudge missed (a worker that died, a
    queue that was down)."""
    return process_outbox()


@tracked_run("automation.scheduled_rules", initiator_name="schedule")
def scheduled_rules_task(tracker) -> dict[str, int]:
    counts = run_scheduled_rules(tracker=tracker)
    # Changes the scheduled actions made are events too: process them now.
    process_outbox()
    return counts


@tracked_run("automation.retry_deliveries", initiator_name="schedule")
def retry_deliveries_task(tracker) -> dict[str, int]:
    abandoned = fail_abandoned_deliveries()
    counts = send_deliveries(due_delivery_ids())
    counts["abandoned_failed"] = abandoned
    if counts.get("failed"):
        tracker.add_failure(
            "automation.delivery_failed", f"{counts['failed']} deliveries failed for good."
        )
    if counts.get("bounced"):
        tracker.add_failure(
            "automation.delivery_bounced",
            f"{counts['bounced']} deliveries bounced (the provider refused them for good).",
        )
    if abandoned:
        tracker.add_failure(
            "automation.delivery_abandoned",
            f"{abandoned} deliveries failed: their worker stopped during the last attempt.",
        )
    return counts


@tracked_run("automation.expire_alerts", initiator_name="schedule")
def expire_alerts_task(tracker) -> dict[str, int]:
    """Every 5 minutes: alerts past their expires_date become expired."""
    return {"expired": alerts_expire()}
