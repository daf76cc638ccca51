from config.commands import BureauCommand
from operations.tasks import reconcile_runs


class Command(BureauCommand):
    help = "Reconcile stale operation runs now and print the counts."

    def run(self, *args, **options):
        run = reconcile_runs(initiator_name="manage.py ops_reconcile")
        counts = run.summary_counts
        self.stdout.write(
            self.style.SUCCESS(
                f"run {run.pk} {run.outcome}: checked {counts.get('checked', 0)}, "
                f"reconciled {counts.get('reconciled', 0)}, skipped {counts.get('skipped', 0)}"
            )
        )
