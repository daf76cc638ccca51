from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from automation.engine import replay_event
from config.errors import ApplicationError
from operations.sanitize import sanitize_message


class Command(BaseCommand):
    help = (
        "Process one outbox event again: rules without an execution run, failed or "
        "partial executions are finished (actions that succeeded are not repeated), "
        "successful ones are left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument("event_id", type=int)

    def handle(self, *args, event_id, **options):
        try:
            counts = replay_event(event_id)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        except (LookupError, ValueError) as error:
            # The event's entity no longer resolves to a model, or its data does not fit it.
            raise CommandError(
                f"event {event_id} cannot be replayed: {sanitize_message(str(error))}"
            ) from None
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no rule matched"
        self.stdout.write(self.style.SUCCESS(f"event {event_id}: {summary}"))
