from django.core.management.base import CommandError

from automation.engine import event_replay
from config.commands import BureauCommand
from operations.sanitize import sanitize_message


class Command(BureauCommand):
    help = (
        "Process one outbox event again: rules without an execution run, failed or "
        "partial executions are finished (actions that succeeded are not repeated), "
        "successful ones are left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument("event_id", type=int)

    def run(self, *args, event_id, **options):
        try:
            counts = event_replay(event_id)
        except (LookupError, ValueError) as error:
            # The event's entity no longer resolves to a model, or its data does not fit it.
            raise CommandError(
                f"event {event_id} cannot be replayed: {sanitize_message(str(error))}"
            ) from None
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no rule matched"
        self.stdout.write(self.style.SUCCESS(f"event {event_id}: {summary}"))
