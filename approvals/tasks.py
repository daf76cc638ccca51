"""django-q2 entry points for approvals. Thin: they call services."""

from approvals.services import pending_actions_poll
from operations.tracking import tracked_run


@tracked_run("approvals.poll_knox", initiator_name="schedule")
def poll_knox(tracker) -> dict[str, int]:
    """Every minute. Overlapping cycles dedupe: a second one is skipped (None)."""
    return pending_actions_poll(tracker=tracker)
