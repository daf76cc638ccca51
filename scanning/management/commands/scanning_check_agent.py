from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from scanning.tasks import check_agent


class Command(BaseCommand):
    help = "Run the scan agent liveness check now (as a scanning.check_agent run) and print the counts."

    def handle(self, *args, **options):
        try:
            run = check_agent(initiator_name="manage.py scanning_check_agent")
        except ApplicationError as error:
            raise CommandError(error.message) from None
        counts = ", ".join(f"{key} {value}" for key, value in sorted(run.summary_counts.items()))
        self.stdout.write(self.style.SUCCESS(f"run {run.pk} {run.outcome}: {counts}"))
