"""The console's lists and pages link the ids they show (an alert's source,
a run's or a result's tenant) to those rows' pages, and show timestamps to
the second."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.choices import ActionStatus
from approvals.models import PendingAction
from tests.approvals.factories import in_flight_actions
from tests.automation.factories import AlertFactory
from tests.operations.factories import OperationRunFactory, TenantFactory

pytestmark = pytest.mark.django_db


def _tenant_href(tenant) -> str:
    return f'href="{reverse("admin:operations_tenant_change", args=[tenant.pk])}"'


def test_an_alerts_source_links_to_its_row_in_the_list_and_on_its_page(admin_client):
    # Given an alert about a tenant (a model the console shows)
    tenant = TenantFactory()
    alert = AlertFactory(source_entity_name="operations_tenant", source_entity_id=str(tenant.pk))

    # When the operator opens the alert list and the alert's page
    listed = admin_client.get(reverse("admin:automation_alert_changelist")).text
    page = admin_client.get(reverse("admin:automation_alert_change", args=[alert.pk])).text

    # Then both link the source to the tenant's page
    assert _tenant_href(tenant) in listed
    assert _tenant_href(tenant) in page


def test_an_alerts_source_is_plain_text_when_its_model_is_not_in_the_console(admin_client):
    # Given an alert about a membership (a model with no console page)
    alert = AlertFactory(source_entity_name="operations_workspacemembership", source_entity_id="7")

    # When the operator opens the alert's page
    page = admin_client.get(reverse("admin:automation_alert_change", args=[alert.pk])).text

    # Then the source is named, without a link
    assert "operations_workspacemembership 7" in page
    assert "workspacemembership/7/change" not in page


def test_a_runs_tenant_links_to_the_tenants_page(admin_client):
    # Given a run for a tenant
    tenant = TenantFactory()
    run = OperationRunFactory(tenant=tenant, workspace=tenant.workspace)

    # When the operator opens the ledger (all kinds) and the run's page
    listed = admin_client.get(reverse("admin:operations_operationrun_changelist") + "?kind=all")
    page = admin_client.get(reverse("admin:operations_operationrun_change", args=[run.pk]))

    # Then both link the tenant to its page
    assert _tenant_href(tenant) in listed.text
    assert _tenant_href(tenant) in page.text


def test_a_results_tenant_id_links_to_the_tenants_page(admin_client, root):
    # Given an executed action whose result names the tenant it created
    tenant = TenantFactory()
    [action] = in_flight_actions(1, user=root, action_type="operations.create_tenant")
    PendingAction.objects.filter(pk=action.pk).update(  # a raw row, as the factory's
        status=ActionStatus.EXECUTED,
        executed_at=timezone.now(),
        execution_result={"tenant_id": tenant.pk, "name": tenant.name},
    )

    # When the operator opens the action's page
    page = admin_client.get(reverse("admin:approvals_pendingaction_change", args=[action.pk])).text

    # Then the result links the tenant id to the tenant's page
    assert _tenant_href(tenant) in page


def test_list_timestamps_show_seconds(admin_client):
    # Given a run created at a time with seconds
    created = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    OperationRunFactory(started_at=created)

    # When the operator opens the ledger
    listed = admin_client.get(reverse("admin:operations_operationrun_changelist") + "?kind=all")

    # Then the time reads to the second
    assert "05:06:07" in listed.text
