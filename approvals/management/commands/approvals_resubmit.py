from approvals.services import pending_action_resubmit
from config.commands import BureauCommand


class Command(BureauCommand):
    help = (
        "Submit a failed submit to Knox again, with the same apInfId (idempotent at Knox). "
        "Runs as the system (the operator at the console): no permission check."
    )

    def add_arguments(self, parser):
        parser.add_argument("pending_action_id", type=int)

    def run(self, *args, pending_action_id, **options):
        action = pending_action_resubmit(pending_action_id=pending_action_id)
        self.stdout.write(self.style.SUCCESS(f"pending action {action.pk}: {action.status}"))
