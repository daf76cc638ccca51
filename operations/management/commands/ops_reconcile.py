from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from operations.tasks import reconcile_runs


class Command(BaseCommand):
    help = "Reconcile stale operation runs now and print the counts."

    def handle(self, *args, **options):
        try:
            run = reconcile_runs(initiator_name="manage.py ops_reconcile")
        except ApplicationError as error:
            raise CommandError(error.message) from None
        counts = run.summary_counts
        self.stdout.write(
            self.style.SUCCESS(
                f"run {run.pk} {run.outcome}: checked {counts.get('checked', 0)}, "
                f"reconciled {counts.get('reconciled', 0)}, skipped {counts.get('skipped', 0)}"
            )
        )
