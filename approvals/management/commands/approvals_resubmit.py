from django.core.management.base import BaseCommand, CommandError

from approvals.services import resubmit_action
from config.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Submit a failed submit to Knox again, with the same apInfId (idempotent at Knox). "
        "Runs as the system (the operator at the console): no permission check."
    )

    def add_arguments(self, parser):
        parser.add_argument("pending_action_id", type=int)

    def handle(self, *args, pending_action_id, **options):
        try:
            action = resubmit_action(pending_action_id)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(self.style.SUCCESS(f"pending action {action.pk}: {action.status}"))
