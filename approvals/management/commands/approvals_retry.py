from django.core.management.base import BaseCommand, CommandError

from approvals.services import retry_execution
from config.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Execute again an approved action whose handler failed. Runs as the system (the "
        "operator at the console): no permission check, the transition reads 'system'."
    )

    def add_arguments(self, parser):
        parser.add_argument("pending_action_id", type=int)

    def handle(self, *args, pending_action_id, **options):
        try:
            action = retry_execution(pending_action_id)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        if action.status != "executed":
            raise CommandError(f"pending action {action.pk} failed again: {action.error_message}")
        self.stdout.write(self.style.SUCCESS(f"pending action {action.pk}: executed"))
