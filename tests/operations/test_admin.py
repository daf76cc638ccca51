from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from config.errors import Forbidden
from operations.choices import RunOutcome
from operations.models import OperationRun
from operations.services import start_run
from operations.tasks import reconcile_runs
from tests.operations.factories import (
    MembershipFactory,
    OperationRunFactory,
    TenantFactory,
    UserFactory,
    WorkspaceFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_operation_types")]

CHANGELIST = reverse("admin:operations_operationrun_changelist")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?status=queued",
        "?outcome=failed",
        "?type=test.workspace_job",
        "?q=abc",
        "?q=12",
        "?workspace__id__exact=1",
    ],
)
def test_the_run_list_loads_with_filters_and_search(admin_client, query):
    OperationRunFactory(failure_summary=[{"code": "x.y", "message": "m"}])

    response = admin_client.get(CHANGELIST + query)

    assert response.status_code == 200


def test_search_finds_a_run_by_id_and_by_identity_hash(admin_client):
    run = OperationRunFactory(run_identity_hash="f" * 64)
    OperationRunFactory()

    by_id = admin_client.get(f"{CHANGELIST}?q={run.pk}")
    by_hash = admin_client.get(f"{CHANGELIST}?q={'f' * 64}")

    assert list(by_id.context["cl"].result_list) == [run]
    assert list(by_hash.context["cl"].result_list) == [run]


def test_the_detail_is_read_only_with_pretty_json(admin_client):
    run = OperationRunFactory(summary_counts={"processed": 7}, context={"inputs": {"batch": 1}})

    response = admin_client.get(reverse("admin:operations_operationrun_change", args=[run.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "&quot;processed&quot;: 7" in page
    assert 'name="_save"' not in page  # no save button: the ledger is written by services only
    assert admin_client.get(reverse("admin:operations_operationrun_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:operations_operationrun_delete", args=[run.pk])
        ).status_code
        == 403
    )


def test_reconcile_now_reconciles_and_reports_the_counts(admin_client):
    stale, _ = start_run(type="test.workspace_job")
    OperationRun.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=1))

    response = admin_client.post(reverse("admin:operations_operationrun_reconcile"), follow=True)

    stale.refresh_from_db()
    assert stale.outcome == RunOutcome.FAILED
    messages = [str(m) for m in response.context["messages"]]
    assert any("reconciled 1" in m for m in messages), messages
    reconcile = OperationRun.objects.get(type="ops.reconcile_runs")
    assert reconcile.initiator_name == "root"


def test_reconcile_now_is_post_only(admin_client):
    response = admin_client.get(reverse("admin:operations_operationrun_reconcile"))

    assert response.status_code == 405
    assert not OperationRun.objects.filter(type="ops.reconcile_runs").exists()


def test_reconcile_now_without_the_permission_says_so_and_runs_nothing(client):
    # given: a staff user who may only view the ledger, and a stale run
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_operationrun"))
    client.force_login(staff)
    stale, _ = start_run(type="test.workspace_job")
    OperationRun.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=1))

    # when
    response = client.post(reverse("admin:operations_operationrun_reconcile"), follow=True)

    # then: an error message on the list page; nothing reconciled, no reconcile run
    assert response.status_code == 200
    errors = [str(m) for m in response.context["messages"] if m.level_tag == "error"]
    assert errors == ["You do not have permission to reconcile operation runs."]
    stale.refresh_from_db()
    assert stale.status != "completed"
    assert not OperationRun.objects.filter(type="ops.reconcile_runs").exists()
    assert "Reconcile now" not in response.content.decode()


def test_reconcile_service_refuses_a_user_without_the_permission():
    viewer = UserFactory()

    with pytest.raises(Forbidden):
        reconcile_runs(user=viewer)

    assert not OperationRun.objects.filter(type="ops.reconcile_runs").exists()


def test_reconcile_now_button_is_on_the_list_page(admin_client):
    response = admin_client.get(CHANGELIST)

    assert "Reconcile now" in response.content.decode()


def test_workspace_page_shows_members_and_tenants(admin_client):
    workspace = WorkspaceFactory()
    MembershipFactory(workspace=workspace, user=UserFactory(username="kim"))
    TenantFactory(workspace=workspace, name="Acme")

    response = admin_client.get(reverse("admin:operations_workspace_change", args=[workspace.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "kim" in page
    assert "Acme" in page
    assert admin_client.get(reverse("admin:operations_tenant_changelist")).status_code == 200
