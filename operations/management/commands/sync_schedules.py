from django.core.management.base import BaseCommand

from operations.schedules import schedule_registry, sync_schedules


class Command(BaseCommand):
    help = "Write Bureau's registered django-q2 schedules to the database (idempotent; prunes stale Bureau-owned ones)."

    def handle(self, *args, **options):
        counts = sync_schedules()
        for spec in schedule_registry:
            every = f"cron {spec.cron}" if spec.cron else f"every {spec.minutes} min"
            self.stdout.write(f"  {spec.name}: {spec.func} ({every})")
        self.stdout.write(
            self.style.SUCCESS(
                "schedules: " + ", ".join(f"{key} {value}" for key, value in counts.items())
            )
        )
