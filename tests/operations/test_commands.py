from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.models import Schedule

from operations.choices import RunOutcome, RunStatus
from operations.models import OperationRun, Tenant, Workspace
from operations.schedules import schedule_registry
from operations.services import mark_run_running, start_run

pytestmark = pytest.mark.django_db


def _call(*args, **kwargs) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


def test_sync_schedules_writes_the_registry_with_an_explicit_next_run():
    before = timezone.now()

    _call("sync_schedules")

    row = Schedule.objects.get(name="bureau:ops.reconcile_runs")
    assert row.func == "operations.tasks.reconcile_runs_task"
    assert (row.schedule_type, row.minutes, row.repeats) == (Schedule.MINUTES, 5, -1)
    assert before + timedelta(minutes=5) <= row.next_run <= timezone.now() + timedelta(minutes=5)


def test_sync_schedules_is_idempotent_and_keeps_next_run():
    _call("sync_schedules")
    first = Schedule.objects.get(name="bureau:ops.reconcile_runs")

    output = _call("sync_schedules")

    again = Schedule.objects.get(name="bureau:ops.reconcile_runs")
    assert again.pk == first.pk and again.next_run == first.next_run
    assert Schedule.objects.filter(name__startswith="bureau:").count() == len(
        list(schedule_registry)
    )
    assert f"unchanged {len(list(schedule_registry))}" in output


def test_sync_schedules_repairs_changes_prunes_stale_owned_ones_and_keeps_foreign_ones():
    _call("sync_schedules")
    Schedule.objects.filter(name="bureau:ops.reconcile_runs").update(minutes=60)
    Schedule.objects.create(
        name="bureau:ops.reconcile_runs",
        func="copy.made.by.hand",
        minutes=1,
        schedule_type=Schedule.MINUTES,
    )
    Schedule.objects.create(
        name="bureau:gone.away", func="x.y", schedule_type=Schedule.MINUTES, minutes=1
    )
    Schedule.objects.create(
        name="operator: nightly report", func="x.z", schedule_type=Schedule.DAILY
    )

    _call("sync_schedules")

    assert Schedule.objects.get(name="bureau:ops.reconcile_runs").minutes == 5
    assert not Schedule.objects.filter(name="bureau:gone.away").exists()
    assert Schedule.objects.filter(name="operator: nightly report").exists()


def test_ops_reconcile_prints_the_counts(test_operation_types):
    stale, _ = start_run(type="test.workspace_job")
    OperationRun.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=1))

    output = _call("ops_reconcile")

    assert "succeeded: checked 1, reconciled 1, skipped 0" in output


def test_ops_reconcile_while_one_is_running_fails_with_one_line():
    run, _ = start_run(type="ops.reconcile_runs")
    mark_run_running(run)

    with pytest.raises(CommandError, match=f"already running as run {run.pk}"):
        _call("ops_reconcile")


def test_seed_demo_is_idempotent_and_prints_a_generated_password_once(monkeypatch):
    monkeypatch.delenv("BUREAU_ADMIN_PASSWORD", raising=False)

    first = _call("seed_demo")
    second = _call("seed_demo")

    assert "with password:" in first
    assert "with password:" not in second
    password = first.split("with password:")[1].split()[0]
    assert get_user_model().objects.get(username="admin").check_password(password)
    demo = Workspace.objects.get(slug="demo")
    assert Tenant.objects.filter(workspace=demo).count() == 2
    assert all(t.external_id.version == 4 for t in Tenant.objects.all())
    runs = OperationRun.objects.filter(workspace=demo)
    assert runs.count() == 4
    assert set(runs.values_list("outcome", flat=True)) == {
        RunOutcome.SUCCEEDED,
        RunOutcome.PARTIALLY_SUCCEEDED,
        RunOutcome.FAILED,
        RunOutcome.PENDING,
    }
    assert runs.filter(status=RunStatus.RUNNING).count() == 1


def test_seed_demo_leaves_demo_rows_an_operator_renamed_or_deleted_alone(monkeypatch):
    # given: the demo seeded, then an operator renamed a tenant and deleted the
    # approval template (the tenant's runs go first: they protect it)
    from approvals.models import ApprovalTemplate

    monkeypatch.setenv("BUREAU_ADMIN_PASSWORD", "from-the-environment-42")
    _call("seed_demo")
    Tenant.objects.filter(name="Acme Corporation").update(name="Acme Holdings")
    ApprovalTemplate.objects.filter(name="New tenant").delete()
    globex = Tenant.objects.get(name="Globex Ltd")
    OperationRun.objects.filter(tenant=globex).delete()
    globex.delete()

    # when: `make run` seeds again
    output = _call("seed_demo")

    # then: nothing is created again, and the command says why
    assert set(Tenant.objects.values_list("name", flat=True)) == {"Acme Holdings"}
    assert not ApprovalTemplate.objects.exists()
    assert OperationRun.objects.filter(type="demo.tenant_sync").count() == 2  # Acme's, kept
    assert "rows renamed or deleted since then are left as they are" in output
    assert OperationRun.objects.filter(type="demo.seed").count() == 1


def test_seed_demo_takes_the_admin_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("BUREAU_ADMIN_PASSWORD", "from-the-environment-42")

    output = _call("seed_demo")

    assert "from-the-environment-42" not in output
    assert get_user_model().objects.get(username="admin").check_password("from-the-environment-42")
    assert "Created superuser 'admin' with the password from BUREAU_ADMIN_PASSWORD." in output


def test_seed_demo_says_whether_it_created_the_admin_or_found_it(monkeypatch):
    # given: the admin's password comes from the environment
    monkeypatch.setenv("BUREAU_ADMIN_PASSWORD", "from-the-environment-42")

    # when: seeded twice
    first = _call("seed_demo")
    second = _call("seed_demo")

    # then: the first run says it created the admin, the second that it already existed
    assert "Created superuser 'admin'" in first
    assert "already exists" not in first
    assert "Superuser 'admin' already exists; its password is unchanged." in second
    assert "Created superuser" not in second
