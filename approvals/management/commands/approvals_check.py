from approvals.services import pending_action_refresh
from config.commands import BureauCommand


class Command(BureauCommand):
    help = (
        "Ask Knox about one document now and act on the answer. Runs as the system "
        "(the operator at the console): no permission check."
    )

    def add_arguments(self, parser):
        parser.add_argument("ap_inf_id")

    def run(self, *args, ap_inf_id, **options):
        action = pending_action_refresh(ap_inf_id=ap_inf_id)
        knox = action.approval_log.knox_status
        self.stdout.write(f"pending action {action.pk}: {action.status} (Knox status {knox})")
