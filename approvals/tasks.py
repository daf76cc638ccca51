"""django-q2 entry points for approvals. Thin: they call services."""

from approvals.services import pending_action_deadlines_sweep, pending_actions_poll
from operations.tracking import tracked_run


@tracked_run("approvals.poll_knox", initiator_name="schedule")
def poll_knox(tracker) -> dict[str, int]:
    """Every minute. Overlapping cycles dedupe: a second one is skipped (None)."""
    return pending_actions_poll(tracker=tracker)


@tracked_run("approvals.sweep_deadlines", initiator_name="schedule")
def sweep_deadlines(tracker, *, batch_size: int | None = None) -> dict[str, int]:
    """Every minute: reminders due, deadlines passed, withdrawals at Knox to
    retry. Overlapping sweeps dedupe like the poll (a second one is skipped)."""
    if batch_size is None:
        return pending_action_deadlines_sweep(tracker=tracker)
    return pending_action_deadlines_sweep(tracker=tracker, batch_size=batch_size)
