"""Issue 13: Knox's delegated approval (status 5, 전결) is shown as "approved
by delegation", with the delegate's EP ID when Knox names one. The simulator
reports the delegate in the status answer's approval line (``aplns``)."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from approvals.choices import ActionStatus, KnoxStatus
from approvals.knox.client import KnoxClient
from approvals.services import pending_actions_poll

pytestmark = pytest.mark.django_db


def _shown(user, action) -> dict:
    client = APIClient()
    client.force_authenticate(user)
    return client.get(f"/api/v1/approvals/pending-actions/{action.pk}/").data


def test_a_delegated_approval_is_shown_with_the_delegate_ep_id(knox, request_tenant, requester):
    # given: Knox approves by delegation, decided by a deputy not in the line
    action = request_tenant()
    knox.decide(action.ap_inf_id, KnoxStatus.DELEGATED_FINAL, delegate_ep_id="EP-DEPUTY-9")

    # when
    pending_actions_poll()

    # then: executed as an approval, and shown as delegated, in the API
    action.refresh_from_db()
    assert action.status == ActionStatus.EXECUTED
    assert action.approval_log.delegate_ep_id == "EP-DEPUTY-9"
    shown = _shown(requester, action)
    assert shown["knox_status"] == 5
    assert shown["knox_decision"] == "approved by delegation"
    assert shown["delegate_ep_id"] == "EP-DEPUTY-9"
    approved = action.transitions.get(to_status=ActionStatus.APPROVED)
    assert "by delegation to EP-DEPUTY-9" in approved.reason


def test_the_console_shows_a_delegated_approval(knox, client, request_tenant, requester):
    # given: an approver of the line decided it by delegation
    action = request_tenant()
    knox.decide(action.ap_inf_id, KnoxStatus.DELEGATED_FINAL, delegate_ep_id="EP-BOSS-1")
    pending_actions_poll()
    requester.is_staff = requester.is_superuser = True
    requester.save()
    client.force_login(requester)

    # when
    page = client.get(reverse("admin:approvals_pendingaction_change", args=[action.pk]))

    # then
    assert "approved by delegation (EP-BOSS-1)" in page.content.decode()


def test_a_delegated_approval_without_a_named_delegate(knox, request_tenant, requester):
    action = request_tenant()
    knox.decide(action.ap_inf_id, KnoxStatus.DELEGATED_FINAL)

    pending_actions_poll()

    shown = _shown(requester, action)
    assert shown["knox_decision"] == "approved by delegation"
    assert shown["delegate_ep_id"] == ""


def test_a_plain_approval_names_no_delegate(knox, request_tenant, requester):
    action = request_tenant()
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)

    pending_actions_poll()

    shown = _shown(requester, action)
    assert (shown["knox_decision"], shown["delegate_ep_id"]) == ("approved", "")


@pytest.mark.parametrize(
    "entry, delegate",
    [
        (
            {
                "aplns": [
                    {"epId": "EP-1", "aplnStatsCode": "0"},
                    {"epId": "EP-D", "aplnStatsCode": "5"},
                ]
            },
            "EP-D",
        ),
        ({"aplns": [{"epId": "EP-D", "aplnStatsCode": 5}]}, "EP-D"),
        ({"aplns": [{"epId": "EP-1", "aplnStatsCode": "2"}]}, None),
        ({"aplns": "garbage"}, None),
        ({}, None),
    ],
)
def test_the_client_reads_the_delegate_from_the_approval_line(entry, delegate):
    answer = {"result": "success", "data": [{"apInfId": "doc1", "status": "5", **entry}]}

    report = KnoxClient._parse_statuses(["doc1"], answer)["doc1"]

    assert report.status == KnoxStatus.DELEGATED_FINAL
    assert report.delegate_ep_id == delegate
