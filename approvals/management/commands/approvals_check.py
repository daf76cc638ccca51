from approvals.services import check_single_approval_status
from config.commands import BureauCommand


class Command(BureauCommand):
    help = (
        "Ask Knox about one document now and act on the answer. Runs as the system "
        "(the operator at the console): no permission check."
    )

    def add_arguments(self, parser):
        parser.add_argument("ap_inf_id")

    def run(self, *args, ap_inf_id, **options):
        action = check_single_approval_status(ap_inf_id)
        knox = action.approval_log.knox_status
        self.stdout.write(f"pending action {action.pk}: {action.status} (Knox status {knox})")
