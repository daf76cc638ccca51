"""Lists an operator can read: states as coloured badges, how long each row
has been in its state, a delivery's recipient linked to the person."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.choices import ActionStatus, FailureStage
from approvals.models import PendingAction
from automation.models import NotificationDelivery
from config.admin_display import AMBER, GREEN, GREY, RED, age, badge
from tests.observability.factories import (
    AlertFactory,
    NotificationDeliveryFactory,
    OperationRunFactory,
    PendingActionFactory,
    ScanJobFactory,
)
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client):
    client.force_login(UserFactory(username="oncall", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize(
    ("value", "colour"),
    [("failed", RED), ("critical", RED), ("retrying", AMBER), ("executed", GREEN), ("x", GREY)],
)
def test_a_state_reads_as_its_colour(value, colour):
    assert f"background:{colour}" in badge(value, "Label")


def test_an_age_reads_in_words():
    now = timezone.now()
    assert age(now - timedelta(minutes=90), now=now) == "1 h 30 min"
    assert age(None) == "—"


@pytest.mark.parametrize(
    ("model", "make", "state"),
    [
        (
            "approvals/pendingaction",
            lambda: PendingActionFactory(
                status=ActionStatus.FAILED, failure_stage=FailureStage.SUBMIT
            ),
            "failed",
        ),
        ("automation/alert", lambda: AlertFactory(severity="critical"), "critical"),
        ("automation/notificationdelivery", lambda: NotificationDeliveryFactory(), "pending"),
        ("scanning/scanjob", lambda: ScanJobFactory(status="failed"), "failed"),
        ("operations/operationrun", lambda: OperationRunFactory(), "queued"),  # ?kind=all below
    ],
)
def test_main_lists_show_states_as_badges(console, model, make, state):
    # given
    make()

    # when
    query = "?kind=all" if model == "operations/operationrun" else ""
    response = console.get(f"/admin/{model}/{query}")
    page = response.text

    # then
    assert response.status_code == 200
    assert f'data-state="{state}"' in page


def test_the_pending_action_list_says_how_long_each_has_been_in_its_state(console):
    # given: failed three hours ago
    action = PendingActionFactory(status=ActionStatus.FAILED, failure_stage=FailureStage.SUBMIT)
    PendingAction.objects.filter(pk=action.pk).update(
        updated_at=timezone.now() - timedelta(hours=3)
    )

    # when
    page = console.get(reverse("admin:approvals_pendingaction_changelist")).text

    # then
    assert "In this state for" in page
    assert '<td class="field-in_state_for">3 h</td>' in page


def test_a_delivery_recipient_links_to_the_person(console):
    person = UserFactory(username="dana")
    NotificationDelivery.objects.create(
        recipient=str(person.pk), recipient_user=person, channel="in_app", payload={}
    )

    page = console.get(reverse("admin:automation_notificationdelivery_changelist")).text

    assert f'<a href="{reverse("admin:auth_user_change", args=[person.pk])}">' in page
