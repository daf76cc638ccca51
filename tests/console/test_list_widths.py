"""The main lists fit a 1400 px wide window (issue 12, item 2): with rows
in them, the page does not scroll sideways."""

from __future__ import annotations

import pytest
from django.utils import timezone

from approvals.choices import ActionStatus, FailureStage
from automation.engine import outbox_process
from automation.entities import entities_sync
from operations.choices import RunOutcome, RunStatus
from tests.automation.factories import alert_action, make_rule
from tests.observability.factories import (
    AlertFactory,
    NotificationDeliveryFactory,
    OperationRunFactory,
    PendingActionFactory,
    ScanJobFactory,
)
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

MAIN_LISTS = {
    "pending actions": "/admin/approvals/pendingaction/",
    "deliveries": "/admin/automation/notificationdelivery/",
    "alerts": "/admin/automation/alert/",
    "executions": "/admin/automation/automationexecution/",
    "runs": "/admin/operations/operationrun/?kind=all",
    "scan jobs": "/admin/scanning/scanjob/",
}


# The page, and the box Django's admin puts the table in (``.results``, which
# scrolls sideways on its own: the page alone never shows a table too wide).
WIDTHS = """() => {
    const page = document.scrollingElement, table = document.querySelector(".results");
    return {
        page: [page.scrollWidth, page.clientWidth],
        table: [table.scrollWidth, table.clientWidth],
    };
}"""


def _plant_rows() -> None:
    """A few rows per list, with the longer values real rows have."""
    now = timezone.now()
    person = UserFactory(username="dana.operator")
    for _ in range(3):
        PendingActionFactory(
            status=ActionStatus.FAILED,
            failure_stage=FailureStage.SUBMIT,
            created_by=person,
            executed_at=now,
        )
        NotificationDeliveryFactory(
            channel="webhook",
            recipient="https://hooks.example.com/services/T000/B000/XXXXXXXX",
            status="failed",
            attempts=5,
            max_attempts=5,
            next_attempt_at=now,
        )
        AlertFactory(
            severity="critical",
            alert_type="tenant_renamed_in_production",
            title="Tenant Initech Europe GmbH was renamed while its invoices were running",
            source_entity_name="operations_tenant",
            source_entity_id="12345",
        )
        OperationRunFactory(
            type="approvals.poll_knox",
            status=RunStatus.COMPLETED,
            outcome=RunOutcome.PARTIALLY_SUCCEEDED,
            started_at=now,
            completed_at=now,
            tenant=TenantFactory(name="Initech Europe GmbH"),
        )
        ScanJobFactory(title="Quarterly report, signed copies for the auditors", status="failed")
    entities_sync()
    make_rule(name="Tell on-call about renamed tenants", actions=[alert_action()])
    tenant = TenantFactory(name="Old name")
    for name in ("Initech Europe GmbH", "Initech"):
        tenant.name = name
        tenant.save()
    outbox_process()


def test_the_main_lists_do_not_scroll_sideways_at_1400_px(logged_in, step):
    page = logged_in
    _plant_rows()
    too_wide = {}
    for name, url in MAIN_LISTS.items():
        step(f"open the {name} list")
        page.goto(url)
        assert page.locator("#result_list tbody tr").count() >= 1, f"no rows in the {name} list"
        for scroller, (width, room) in page.evaluate(WIDTHS).items():
            if width > room:
                too_wide[f"{name}: {scroller}"] = f"{width} px in {room} px"

    assert too_wide == {}
