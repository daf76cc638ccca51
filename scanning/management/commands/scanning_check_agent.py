from config.commands import BureauCommand
from scanning.tasks import check_agent


class Command(BureauCommand):
    help = "Run the scan agent liveness check now (as a scanning.check_agent run) and print the counts."

    def run(self, *args, **options):
        run = check_agent(initiator_name="manage.py scanning_check_agent")
        counts = ", ".join(f"{key} {value}" for key, value in sorted(run.summary_counts.items()))
        self.stdout.write(self.style.SUCCESS(f"run {run.pk} {run.outcome}: {counts}"))
