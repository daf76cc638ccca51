from django.core.management.base import BaseCommand

from approvals.tasks import poll_knox


class Command(BaseCommand):
    help = (
        "Run one Knox poll cycle now (recorded as an approvals.poll_knox run) and print the counts."
    )

    def handle(self, *args, **options):
        counts = poll_knox()
        if counts is None:
            self.stdout.write("A poll cycle is already running; skipped.")
            return
        self.stdout.write(self.style.SUCCESS(", ".join(f"{k} {v}" for k, v in counts.items())))
