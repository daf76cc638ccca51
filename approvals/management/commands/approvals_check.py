from django.core.management.base import BaseCommand, CommandError

from approvals.services import check_single_approval_status
from config.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Ask Knox about one document now and act on the answer. Runs as the system "
        "(the operator at the console): no permission check."
    )

    def add_arguments(self, parser):
        parser.add_argument("ap_inf_id")

    def handle(self, *args, ap_inf_id, **options):
        try:
            action = check_single_approval_status(ap_inf_id)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        knox = action.approval_log.knox_status
        self.stdout.write(f"pending action {action.pk}: {action.status} (Knox status {knox})")
