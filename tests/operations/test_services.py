from datetime import timedelta

import pytest
from django.utils import timezone

from config.errors import InvalidInput, InvalidTransition
from operations.catalog import UnknownOperationType
from operations.choices import RunOutcome, RunStatus
from operations.models import OperationRun
from operations.services import (
    complete_run,
    mark_run_running,
    start_run,
    system_workspace,
)
from tests.operations.factories import TenantFactory, WorkspaceFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_operation_types")]


def test_start_run_queues_a_run_with_an_identity_hash():
    tenant = TenantFactory()

    run, created = start_run(type="test.tenant_job", tenant=tenant, inputs={"batch": 7})

    assert created is True
    assert run.status == RunStatus.QUEUED
    assert run.outcome == RunOutcome.PENDING
    assert run.workspace == tenant.workspace
    assert len(run.run_identity_hash) == 64
    assert run.context == {"inputs": {"batch": 7}}
    assert run.initiator_name == "system"


def test_starting_an_active_identity_again_returns_the_active_run():
    tenant = TenantFactory()
    first, _ = start_run(type="test.tenant_job", tenant=tenant, inputs={"batch": 1})

    again, created = start_run(type="test.tenant_job", tenant=tenant, inputs={"batch": 1})

    assert created is False
    assert again.pk == first.pk
    assert OperationRun.objects.count() == 1


def test_a_running_run_also_dedupes_but_a_completed_one_does_not():
    tenant = TenantFactory()
    first, _ = start_run(type="test.tenant_job", tenant=tenant, inputs={"batch": 1})
    mark_run_running(first)
    assert start_run(type="test.tenant_job", tenant=tenant, inputs={"batch": 1})[0].pk == first.pk

    complete_run(first, outcome=RunOutcome.SUCCEEDED)
    second, created = start_run(type="test.tenant_job", tenant=tenant, inputs={"batch": 1})

    assert created is True
    assert second.pk != first.pk
    assert second.run_identity_hash == first.run_identity_hash


def test_identity_depends_on_inputs_and_tenant():
    tenant_a, tenant_b = TenantFactory(), TenantFactory()

    a1, _ = start_run(type="test.tenant_job", tenant=tenant_a, inputs={"batch": 1})
    a2, _ = start_run(type="test.tenant_job", tenant=tenant_a, inputs={"batch": 2})
    b1, _ = start_run(type="test.tenant_job", tenant=tenant_b, inputs={"batch": 1})

    assert len({a1.pk, a2.pk, b1.pk}) == 3
    assert a1.run_identity_hash != a2.run_identity_hash != b1.run_identity_hash


def test_workspace_scoped_runs_default_to_the_system_workspace():
    run, _ = start_run(type="test.workspace_job")

    assert run.workspace == system_workspace()
    assert run.tenant is None


def test_workspace_scoped_identity_is_per_workspace():
    other = WorkspaceFactory()

    system_run, _ = start_run(type="test.workspace_job")
    other_run, created = start_run(type="test.workspace_job", workspace=other)

    assert created is True
    assert other_run.pk != system_run.pk


def test_unknown_type_is_refused_naming_the_known_types():
    with pytest.raises(UnknownOperationType) as error:
        start_run(type="nope.nothing")

    assert "nope.nothing" in error.value.message
    assert "test.tenant_job" in error.value.message
    assert "ops.reconcile_runs" in error.value.extra["known_types"]
    assert not OperationRun.objects.exists()


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"type": "test.tenant_job", "inputs": {"batch": 1}}, "operation.tenant_required"),
        ({"type": "test.workspace_job", "tenant": "TENANT"}, "operation.tenant_not_allowed"),
        ({"type": "test.tenant_job", "tenant": "TENANT"}, "operation.bad_inputs"),
        (
            {"type": "test.tenant_job", "tenant": "TENANT", "inputs": {"batch": 1, "x": 2}},
            "operation.bad_inputs",
        ),
    ],
)
def test_bad_scope_or_inputs_are_refused_and_nothing_is_written(kwargs, code):
    if kwargs.get("tenant") == "TENANT":
        kwargs["tenant"] = TenantFactory()

    with pytest.raises(InvalidInput) as error:
        start_run(**kwargs)

    assert error.value.code == code
    assert not OperationRun.objects.exists()


def test_tenant_from_another_workspace_is_refused():
    tenant = TenantFactory()

    with pytest.raises(InvalidInput, match="does not belong"):
        start_run(
            type="test.tenant_job", tenant=tenant, workspace=WorkspaceFactory(), inputs={"batch": 1}
        )


def test_mark_running_moves_queued_to_running_once():
    run, _ = start_run(type="test.workspace_job")

    mark_run_running(run)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert run.started_at is not None

    with pytest.raises(InvalidTransition) as error:
        mark_run_running(run)
    assert error.value.extra["current_state"] == RunStatus.RUNNING


def test_complete_normalises_counts_and_records_dropped_keys():
    run, _ = start_run(type="test.workspace_job")
    mark_run_running(run)

    complete_run(
        run,
        outcome=RunOutcome.SUCCEEDED,
        counts={"processed": 3.0, "failed": -2, "bogus": 1, "flag": True},
    )

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.completed_at is not None
    assert run.summary_counts == {"processed": 3, "failed": 0}
    assert run.context["dropped_summary_keys"] == ["bogus", "flag"]


def test_non_integer_counts_of_known_keys_are_dropped_too():
    run, _ = start_run(type="test.workspace_job")

    complete_run(run, outcome=RunOutcome.SUCCEEDED, counts={"processed": "12", "failed": 1.5})

    run.refresh_from_db()
    assert run.summary_counts == {}
    assert run.context["dropped_summary_keys"] == ["failed", "processed"]


def test_complete_sanitises_failures():
    run, _ = start_run(type="test.workspace_job")

    complete_run(
        run,
        outcome=RunOutcome.FAILED,
        failures=[
            {
                "code": "Knox.Timeout",
                "message": "POST failed with Authorization: Bearer s3cr3t-t0ken",
            },
            {"code": "mail", "message": "could not reach kim.minsu@samsung.com, password=hunter2"},
        ],
    )

    run.refresh_from_db()
    codes = [f["code"] for f in run.failure_summary]
    text = " ".join(f["message"] for f in run.failure_summary)
    assert codes == ["knox.timeout", "error.mail"]
    assert "s3cr3t-t0ken" not in text
    assert "kim.minsu" not in text
    assert "hunter2" not in text


def test_completing_twice_is_refused_and_changes_nothing():
    run, _ = start_run(type="test.workspace_job")
    complete_run(run, outcome=RunOutcome.SUCCEEDED, counts={"processed": 1})
    before = OperationRun.objects.get(pk=run.pk)

    with pytest.raises(InvalidTransition):
        complete_run(run, outcome=RunOutcome.FAILED, counts={"processed": 9})

    after = OperationRun.objects.get(pk=run.pk)
    assert (after.outcome, after.summary_counts, after.updated_at) == (
        before.outcome,
        before.summary_counts,
        before.updated_at,
    )


def test_complete_with_a_non_terminal_outcome_is_refused():
    run, _ = start_run(type="test.workspace_job")

    with pytest.raises(InvalidInput):
        complete_run(run, outcome=RunOutcome.PENDING)

    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED


def test_completing_a_run_of_an_unregistered_type_keeps_no_counts(test_operation_types):
    run, _ = start_run(type="test.workspace_job")
    from operations.catalog import operation_catalog

    operation_catalog.unregister("test.workspace_job")

    complete_run(run, outcome=RunOutcome.SUCCEEDED, counts={"processed": 1})

    run.refresh_from_db()
    assert run.summary_counts == {}
    assert run.context["dropped_summary_keys"] == ["processed"]


def test_a_completed_run_has_ordered_timestamps():
    run, _ = start_run(type="test.workspace_job")
    mark_run_running(run)
    complete_run(run, outcome=RunOutcome.SUCCEEDED)
    run.refresh_from_db()

    assert (
        run.created_at
        <= run.started_at
        <= run.completed_at
        <= timezone.now() + timedelta(seconds=1)
    )
