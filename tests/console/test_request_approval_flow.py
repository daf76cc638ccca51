"""Issue 12, items 4 and 7: an operator requests an approval through the
guided form in a real browser (Chromium through Playwright), approves it on
the Knox simulator's own page (the real simulator process), runs the poll,
and sees the action executed on its page."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from approvals.choices import ActionStatus
from approvals.knox.launcher import start_simulator, stop_simulator
from approvals.models import PendingAction
from approvals.services import knox_profile_set
from operations.models import Tenant
from tests.approvals.factories import ApprovalTemplateFactory
from tests.operations.factories import UserFactory, WorkspaceFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture(scope="module")
def _simulator_process(tmp_path_factory):
    simulator = start_simulator(tmp_path_factory.mktemp("knox") / "documents.json")
    yield simulator
    stop_simulator(simulator)


@pytest.fixture
def knox(_simulator_process, settings):
    """A clean simulator, and Bureau (the live server is a thread of this
    process, so it reads these settings too) pointed at it."""
    _simulator_process.reset()
    settings.KNOX_BASE_URL = _simulator_process.url
    settings.KNOX_SUBMIT_GRACE_SECONDS = 0
    return _simulator_process


def test_an_approval_is_requested_with_the_guided_form_approved_in_knox_and_executed(
    logged_in, console_user, knox, step
):
    page = logged_in
    # given: the operator has an EP ID; a workspace, a template and an approver exist
    knox_profile_set(user=console_user, ep_id="EP-ONCALL")
    WorkspaceFactory(slug="acme", name="Acme")
    ApprovalTemplateFactory(
        name="New tenant",
        content="<h2>New tenant {{tenant_name}}</h2><p>In {{workspace}}.</p>",
        sample_variables={"tenant_name": "Example", "workspace": "acme"},
    )
    boss = UserFactory(username="bpark", first_name="Bo", last_name="Park")
    knox_profile_set(user=boss, ep_id="EP-BOSS-1")

    step("open the request form")
    page.goto("/admin/approvals/pendingaction/request/")
    expect(page.locator("[name=variable__tenant_name]")).to_have_count(0)

    step("choose the template: its variables appear with the sample values")
    page.select_option("#id_template", label="New tenant")
    page.wait_for_url(re.compile(r"\?template=\d+"))
    expect(page.locator("[name=variable__tenant_name]")).to_have_value("Example")
    expect(page.locator("[name=variable__workspace]")).to_have_value("acme")

    step("choose the action type: the payload's fields appear")
    page.select_option("#id_action_type", "operations.create_tenant")
    page.wait_for_url(re.compile(r"action_type=operations\.create_tenant"))
    expect(page.locator("select[name=payload__workspace]")).to_be_visible()
    expect(page.locator("[name=payload]")).to_have_count(0)
    expect(page.locator("[name=variable__tenant_name]")).to_have_value("Example")

    step("fill in the tenant")
    page.fill("[name=variable__tenant_name]", "Initech")
    page.select_option("select[name=payload__workspace]", "acme")
    page.fill("[name=payload__name]", "Initech")
    page.fill("#id_title", "Create tenant Initech")

    step("look up the approver by name")
    page.fill("#approver-search", "Park")
    choice = page.locator("#approver-results button", has_text="EP-BOSS-1")
    expect(choice).to_have_text("Bo Park (bpark) \u2014 EP-BOSS-1")
    choice.click()
    expect(page.locator("#id_approvers")).to_have_value("EP-BOSS-1")

    step("submit for approval")
    page.get_by_role("button", name="Submit for approval").click()
    page.wait_for_url(re.compile(r"/admin/approvals/pendingaction/\d+/change/$"))
    action = PendingAction.objects.get()
    expect(page.locator(".messagelist .success")).to_contain_text(
        f"Submitted to Knox as {action.ap_inf_id}"
    )
    assert action.action_payload == {"workspace": "acme", "name": "Initech"}

    step("approve it on the Knox simulator's page")
    page.goto(f"{knox.url}/")
    row = page.locator("tr", has_text=action.ap_inf_id)
    expect(row).to_contain_text("Create tenant Initech")
    expect(row).to_contain_text("EP-BOSS-1")
    row.locator("button[value=approve]").click()
    expect(page.locator("tr", has_text=action.ap_inf_id)).to_contain_text("approved")

    step("run the poll")
    call_command("approvals_poll")

    step("the action's page shows it executed")
    page.goto(f"/admin/approvals/pendingaction/{action.pk}/change/")
    expect(page.locator(".field-status")).to_contain_text(re.compile("executed", re.I))
    tenant = Tenant.objects.get(name="Initech")
    expect(page.locator(".field-result_pretty")).to_contain_text(str(tenant.external_id))
    assert PendingAction.objects.get().status == ActionStatus.EXECUTED
