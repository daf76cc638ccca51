from django.core.management.base import CommandError

from automation.services import delivery_retry
from automation.tasks import retry_deliveries_task
from config.commands import BureauCommand
from config.errors import ApplicationError


class Command(BureauCommand):
    help = (
        "Send the notification deliveries that are due now (recorded as an "
        "automation.retry_deliveries run), or with --id retry the given ones at once, "
        "failed ones included."
    )

    def add_arguments(self, parser):
        parser.add_argument("--id", dest="ids", type=int, action="append", default=[], metavar="ID")

    def run(self, *args, ids, **options):
        if not ids:
            counts = retry_deliveries_task()
            if counts is None:
                raise CommandError(
                    "A retry_deliveries run is already under way; try again shortly."
                )
            summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            self.stdout.write(self.style.SUCCESS(f"due deliveries: {summary}"))
            return
        failures = 0
        for delivery_id in ids:
            try:
                delivery = delivery_retry(delivery_id=delivery_id)
            except ApplicationError as error:
                failures += 1
                self.stderr.write(f"delivery {delivery_id}: {error.message}")
                continue
            self.stdout.write(
                f"delivery {delivery.pk}: {delivery.status} after {delivery.attempts} attempt(s)"
            )
        if failures:
            raise CommandError(f"{failures} of {len(ids)} deliveries could not be retried.")
