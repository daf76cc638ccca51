from approvals.tasks import poll_knox
from config.commands import BureauCommand


class Command(BureauCommand):
    help = (
        "Run one Knox poll cycle now (recorded as an approvals.poll_knox run) and print the counts."
    )

    def run(self, *args, **options):
        counts = poll_knox()
        if counts is None:
            self.stdout.write("A poll cycle is already running; skipped.")
            return
        self.stdout.write(self.style.SUCCESS(", ".join(f"{k} {v}" for k, v in counts.items())))
