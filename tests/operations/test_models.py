import uuid

import pytest
from django.db import IntegrityError, transaction

from operations.choices import RunOutcome, RunStatus
from tests.operations.factories import OperationRunFactory, TenantFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_tenant_external_id_is_a_uuid4_set_on_create():
    tenant = TenantFactory()
    other = TenantFactory()

    assert isinstance(tenant.external_id, uuid.UUID)
    assert tenant.external_id.version == 4
    assert tenant.external_id != other.external_id


def test_two_active_tenant_runs_with_one_identity_are_refused_by_the_database():
    tenant = TenantFactory()
    OperationRunFactory(workspace=tenant.workspace, tenant=tenant, run_identity_hash="a" * 64)

    with pytest.raises(IntegrityError), transaction.atomic():
        OperationRunFactory(
            workspace=tenant.workspace,
            tenant=tenant,
            run_identity_hash="a" * 64,
            status=RunStatus.RUNNING,
        )


def test_two_active_workspace_runs_with_one_identity_are_refused_by_the_database():
    workspace = WorkspaceFactory()
    OperationRunFactory(workspace=workspace, run_identity_hash="b" * 64)

    with pytest.raises(IntegrityError), transaction.atomic():
        OperationRunFactory(workspace=workspace, run_identity_hash="b" * 64)


def test_completed_runs_do_not_count_against_the_active_identity():
    workspace = WorkspaceFactory()
    for _ in range(2):
        OperationRunFactory(
            workspace=workspace,
            run_identity_hash="c" * 64,
            status=RunStatus.COMPLETED,
            outcome=RunOutcome.SUCCEEDED,
            completed_at="2026-01-01T00:00:00Z",
        )

    OperationRunFactory(workspace=workspace, run_identity_hash="c" * 64)  # active: allowed


def test_a_tenant_run_does_not_collide_with_a_workspace_run_of_the_same_hash():
    tenant = TenantFactory()
    OperationRunFactory(workspace=tenant.workspace, run_identity_hash="d" * 64)

    OperationRunFactory(workspace=tenant.workspace, tenant=tenant, run_identity_hash="d" * 64)


@pytest.mark.parametrize(
    "fields",
    [
        {
            "status": RunStatus.COMPLETED,
            "outcome": RunOutcome.PENDING,
            "completed_at": "2026-01-01T00:00:00Z",
        },
        {"status": RunStatus.COMPLETED, "outcome": RunOutcome.SUCCEEDED},  # no completed_at
        {"status": RunStatus.RUNNING, "outcome": RunOutcome.FAILED},
        {"status": "exploded"},
    ],
)
def test_status_and_outcome_must_agree(fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        OperationRunFactory(**fields)
