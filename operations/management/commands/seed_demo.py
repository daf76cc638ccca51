import os
import secrets
from importlib import import_module

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from operations.choices import MemberRole, RunOutcome
from operations.models import OperationRun, Tenant, Workspace, WorkspaceMembership
from operations.services import complete_run, mark_run_running, start_run, system_workspace

DEMO_RUNS = [
    # (tenant, source, outcome or None for still running, counts, failures)
    ("Acme Corporation", "crm", RunOutcome.SUCCEEDED, {"fetched": 120, "updated": 118}, []),
    (
        "Acme Corporation",
        "erp",
        RunOutcome.PARTIALLY_SUCCEEDED,
        {"fetched": 40, "updated": 37, "failed": 3},
        [{"code": "sync.record_rejected", "message": "3 records were rejected by the source."}],
    ),
    (
        "Globex Ltd",
        "crm",
        RunOutcome.FAILED,
        {"fetched": 0},
        [{"code": "sync.source_unavailable", "message": "The source did not answer within 30s."}],
    ),
    ("Globex Ltd", "erp", None, {}, []),
]


# One run of this type in the ledger: the demo data was created once.
SEED_RUN_TYPE = "demo.seed"


class Command(BaseCommand):
    help = (
        "Create demo data once: an admin user, a workspace, two tenants, a few runs "
        "(rows renamed or deleted later are not created again)."
    )

    def handle(self, *args, **options):
        with transaction.atomic():
            admin, created, password = self._admin_user()
            system_workspace()
            seeded = OperationRun.objects.filter(type=SEED_RUN_TYPE).order_by("pk").first()
            if seeded is None:
                workspace, tenants, created_runs, said = self._demo_rows(admin)
                self._remember(admin, tenants=len(tenants), runs=created_runs)
        if created and password:
            self.stdout.write(
                self.style.WARNING(
                    f"Created superuser {admin.username!r} with password: {password}\n"
                    "  (shown once; set BUREAU_ADMIN_PASSWORD to choose it yourself)"
                )
            )
        elif created:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created superuser {admin.username!r} with the password from "
                    "BUREAU_ADMIN_PASSWORD."
                )
            )
        else:
            self.stdout.write(
                f"Superuser {admin.username!r} already exists; its password is unchanged."
            )
        if seeded is not None:
            self.stdout.write(
                f"demo data: created on {seeded.created_at:%Y-%m-%d %H:%M} (run {seeded.pk}); "
                "rows renamed or deleted since then are left as they are"
            )
            return
        for line in said:
            self.stdout.write(f"  {line}")
        self.stdout.write(
            self.style.SUCCESS(
                f"demo data: workspace {workspace.slug!r}, {len(tenants)} tenants, "
                f"{created_runs} new operation runs"
            )
        )

    def _demo_rows(self, admin):
        workspace, _ = Workspace.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
        WorkspaceMembership.objects.get_or_create(
            workspace=workspace, user=admin, defaults={"role": MemberRole.ADMIN}
        )
        tenants = {
            name: Tenant.objects.get_or_create(workspace=workspace, name=name)[0]
            for name in ("Acme Corporation", "Globex Ltd")
        }
        created_runs = self._runs(tenants, admin)
        return workspace, tenants, created_runs, self._other_apps(admin)

    def _remember(self, admin, **counts: int) -> None:
        """The ledger remembers that the demo data was created, so a later
        ``seed_demo`` (every ``make run``) leaves alone what an operator
        renamed or deleted instead of creating it again."""
        run, _ = start_run(type=SEED_RUN_TYPE, user=admin)
        mark_run_running(run)
        complete_run(run, outcome=RunOutcome.SUCCEEDED, counts=counts)

    def _other_apps(self, admin) -> list[str]:
        """Each app that has demo data seeds it through its own services."""
        said = []
        for app in ("approvals",):
            if apps.is_installed(app):
                said += import_module(f"{app}.demo").seed(admin)
        return said

    def _admin_user(self):
        """``(user, created, generated password or None)``."""
        User = get_user_model()
        username = os.environ.get("BUREAU_ADMIN_USERNAME", "admin")
        user = User.objects.filter(username=username).first()
        if user is not None:
            return user, False, None
        password = os.environ.get("BUREAU_ADMIN_PASSWORD")
        generated = None
        if not password:
            password = generated = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(
            username=username,
            email=os.environ.get("BUREAU_ADMIN_EMAIL", "admin@localhost"),
            password=password,
        )
        return user, True, generated

    def _runs(self, tenants: dict[str, Tenant], admin) -> int:
        if OperationRun.objects.filter(
            type="demo.tenant_sync", workspace=tenants["Acme Corporation"].workspace
        ).exists():
            return 0
        for tenant_name, source, outcome, counts, failures in DEMO_RUNS:
            run, _ = start_run(
                type="demo.tenant_sync",
                tenant=tenants[tenant_name],
                user=admin,
                inputs={"source": source},
            )
            mark_run_running(run)
            if outcome is not None:
                complete_run(run, outcome=outcome, counts=counts, failures=failures)
        return len(DEMO_RUNS)
