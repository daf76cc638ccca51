"""django-q2 entry points for automation. Thin: they call the engine and the
delivery sender; the scheduled ones run inside tracked_run."""

from __future__ import annotations

import logging

from django_q.tasks import async_task

from automation import conf
from automation.actions.notifications import queue_delivery_sending
from automation.engine import outbox_helpers_needed, outbox_process, scheduled_rules_run
from automation.selectors import deliveries_due_ids
from automation.services import alerts_expire, deliveries_release_abandoned, deliveries_send
from operations.tracking import tracked_run

logger = logging.getLogger(__name__)


def process_outbox_task(fan_out: bool = True) -> dict[str, int]:
    """Queued after a transaction that wrote events commits. A backlog of
    more than one batch is shared: helpers are queued first (``fan_out``;
    helpers do not queue more), then this task drains beside them."""
    if fan_out:
        queue_outbox_helpers()
    return outbox_process()


def queue_outbox_helpers() -> int:
    """Queue the drain tasks the backlog calls for; how many."""
    helpers = outbox_helpers_needed()
    try:
        for _ in range(helpers):
            async_task(
                "automation.tasks.process_outbox_task",
                False,
                task_name="automation.process_outbox",
            )
    except Exception:  # noqa: BLE001 - this task drains alone; the schedule helps later
        logger.exception("could not queue outbox helpers")
    return helpers


def send_deliveries_task(ids: list[int]) -> dict[str, int]:
    """Queued after a transaction that created deliveries commits."""
    return deliveries_send(ids)


@tracked_run("automation.drain_outbox", initiator_name="schedule")
def drain_outbox_task(tracker) -> dict[str, int]:
    """Every minute: process events a nudge missed (a worker that died, a
    queue that was down), with helpers when there are many."""
    helpers = queue_outbox_helpers()
    counts = outbox_process()
    counts["helpers"] = helpers
    return counts


@tracked_run("automation.scheduled_rules", initiator_name="schedule")
def scheduled_rules_task(tracker) -> dict[str, int]:
    counts = scheduled_rules_run(tracker=tracker)
    # Changes the scheduled actions made are events too: process them now.
    outbox_process()
    return counts


@tracked_run("automation.retry_deliveries", initiator_name="schedule")
def retry_deliveries_task(tracker) -> dict[str, int]:
    """Every minute: deliveries whose worker died go back to be sent again,
    then what is due is sent: the first chunk here, the others as tasks of
    their own, so every cluster shares a large backlog."""
    released = deliveries_release_abandoned()
    due = deliveries_due_ids()
    size = conf.delivery_task_size()
    for start in range(size, len(due), size):
        queue_delivery_sending(due[start : start + size])
    counts = deliveries_send(due[:size])
    counts["queued"] = max(len(due) - size, 0)
    counts.update(released)
    if counts.get("failed"):
        tracker.add_failure(
            "automation.delivery_failed", f"{counts['failed']} deliveries failed for good."
        )
    if counts.get("bounced"):
        tracker.add_failure(
            "automation.delivery_bounced",
            f"{counts['bounced']} deliveries bounced (the provider refused them for good).",
        )
    if released["abandoned_failed"]:
        tracker.add_failure(
            "automation.delivery_abandoned",
            f"{released['abandoned_failed']} deliveries failed: their worker stopped while "
            "sending them too many times.",
        )
    return counts


@tracked_run("automation.expire_alerts", initiator_name="schedule")
def expire_alerts_task(tracker) -> dict[str, int]:
    """Every 5 minutes: alerts past their expires_date become expired."""
    return {"expired": alerts_expire()}
