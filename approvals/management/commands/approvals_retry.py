from django.core.management.base import CommandError

from approvals.services import pending_action_retry
from config.commands import BureauCommand


class Command(BureauCommand):
    help = (
        "Execute again an approved action whose handler failed. Runs as the system (the "
        "operator at the console): no permission check, the transition reads 'system'."
    )

    def add_arguments(self, parser):
        parser.add_argument("pending_action_id", type=int)

    def run(self, *args, pending_action_id, **options):
        action = pending_action_retry(pending_action_id=pending_action_id)
        if action.status != "executed":
            raise CommandError(f"pending action {action.pk} failed again: {action.error_message}")
        self.stdout.write(self.style.SUCCESS(f"pending action {action.pk}: executed"))
