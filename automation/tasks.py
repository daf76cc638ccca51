"""django-q2 entry points for automation. Thin: they call the engine and the
delivery sender; the scheduled ones run inside tracked_run."""

from __future__ import annotations

from automation.engine import outbox_process, scheduled_rules_run
from automation.selectors import deliveries_due_ids
from automation.services import alerts_expire, deliveries_fail_abandoned, deliveries_send
from operations.tracking import tracked_run


def process_outbox_task() -> dict[str, int]:
    """Queued after a transaction that wrote events commits."""
    return outbox_process()


def send_deliveries_task(ids: list[int]) -> dict[str, int]:
    """Queued after a transaction that created deliveries commits."""
    return deliveries_send(ids)


@tracked_run("automation.drain_outbox", initiator_name="schedule")
def drain_outbox_task(tracker) -> dict[str, int]:
    """Every minute: process events a nudge missed (a worker that died, a
    queue that was down)."""
    return outbox_process()


@tracked_run("automation.scheduled_rules", initiator_name="schedule")
def scheduled_rules_task(tracker) -> dict[str, int]:
    counts = scheduled_rules_run(tracker=tracker)
    # Changes the scheduled actions made are events too: process them now.
    outbox_process()
    return counts


@tracked_run("automation.retry_deliveries", initiator_name="schedule")
def retry_deliveries_task(tracker) -> dict[str, int]:
    abandoned = deliveries_fail_abandoned()
    counts = deliveries_send(deliveries_due_ids())
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
