from automation.entities import entities_sync
from config.commands import BureauCommand


class Command(BureauCommand):
    help = (
        "Register Bureau's models and those listed in AUTOMATION_ENTITIES as automation "
        "entities (idempotent). Listed models that do not exist are reported and skipped."
    )

    def run(self, *args, **options):
        report = entities_sync()
        for label in report.created:
            self.stdout.write(f"registered {label}")
        for label in report.updated:
            self.stdout.write(f"updated {label}")
        for line in report.missing:
            self.stderr.write(self.style.WARNING(f"skipped {line}"))
        self.stdout.write(
            self.style.SUCCESS(
                f"entities: {len(report.created)} created, {len(report.updated)} updated, "
                f"{len(report.unchanged)} unchanged, {len(report.missing)} skipped"
            )
        )
        if report.created or report.updated:
            self.stdout.write(
                "Restart running processes (web, qcluster) so they watch newly listed models."
            )
