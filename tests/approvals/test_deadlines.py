"""Issue 13: decision deadlines, reminders, expiry (withdrawn at Knox) and
escalation. Knox is the real simulator process (``knox`` fixture); the sweep
is given the moment it runs at, so no test waits for a deadline."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.choices import ActionStatus, DeadlinePolicy, KnoxStatus
from approvals.models import PendingAction, PendingActionReminder
from approvals.services import (
    pending_action_deadlines_sweep,
    pending_action_expire,
    pending_actions_poll,
)
from approvals.tasks import sweep_deadlines
from automation.models import Alert, NotificationDelivery
from config.errors import InvalidTransition
from operations.models import OperationRun
from operations.schedules import schedule_registry
from tests.approvals.factories import (
    ApprovalTemplateFactory,
    post_request_form,
    tenant_request_body,
)
from tests.automation.factories import GroupFactory
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/approvals/"


@pytest.fixture
def reviewer():
    return UserFactory(username="reviewer")


@pytest.fixture
def on_call(db):
    """A group of two: the escalation target."""
    group = GroupFactory(name="approvals-on-call")
    for name in ("oncall-1", "oncall-2"):
        UserFactory(username=name).groups.add(group)
    return group


@pytest.fixture
def deadline_template(tenant_template, reviewer):
    """The tenant template with a 3-day deadline, reminders 1 day and 2 hours before."""
    tenant_template.decision_deadline = "3d"
    tenant_template.reminders_before = "1d, 2h"
    tenant_template.reminder_recipients = {"users": ["reviewer"]}
    tenant_template.deadline_policy = DeadlinePolicy.WITHDRAW
    tenant_template.full_clean()
    tenant_template.save()
    return tenant_template


@pytest.fixture
def escalate_template(deadline_template, on_call):
    """The deadline template, escalating to the on-call group when overdue."""
    deadline_template.deadline_policy = DeadlinePolicy.ESCALATE
    deadline_template.escalation_recipients = {"roles": [on_call.name]}
    deadline_template.full_clean()
    deadline_template.save()
    return deadline_template


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _call(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# --- template settings: refusals ----------------------------------------------------------


@pytest.mark.parametrize(
    "fields, field, words",
    [
        ({"decision_deadline": "3 days"}, "decision_deadline", "is not a duration"),
        ({"decision_deadline": "-3d"}, "decision_deadline", "negative"),
        ({"decision_deadline": "0h"}, "decision_deadline", "is not a duration"),
        ({"decision_deadline": "900d"}, "decision_deadline", "longer than 366 days"),
        ({"decision_deadline": "3d", "reminders_before": "-2h"}, "reminders_before", "negative"),
        ({"decision_deadline": "3d", "reminders_before": "2x"}, "reminders_before", "not a"),
        (
            {"decision_deadline": "3d", "reminders_before": "3d"},
            "reminders_before",
            "before the request",
        ),
        (
            {"decision_deadline": "1d", "reminders_before": "2d"},
            "reminders_before",
            "before the request",
        ),
        ({"decision_deadline": "3d", "reminders_before": "2h, 2h"}, "reminders_before", "twice"),
        ({"reminders_before": "2h"}, "reminders_before", "need a decision deadline"),
        ({"decision_deadline": "3d", "reminder_channels": "fax"}, "reminder_channels", "fax"),
        ({"reminder_recipients": {"roles": ["nobody-has-this"]}}, "reminder_recipients", "no such"),
        (
            {"decision_deadline": "3d", "deadline_policy": DeadlinePolicy.ESCALATE},
            "escalation_recipients",
            "needs a user or role",
        ),
        ({"deadline_policy": "explode"}, "deadline_policy", "withdraw, escalate"),
    ],
)
def test_a_template_with_bad_deadline_settings_is_refused(fields, field, words):
    # given
    template = ApprovalTemplateFactory.build(**fields)

    # when
    with pytest.raises(ValidationError) as refused:
        template.full_clean()

    # then
    assert field in refused.value.message_dict
    assert words in " ".join(refused.value.message_dict[field])


def test_good_deadline_settings_pass(on_call):
    template = ApprovalTemplateFactory.build(
        decision_deadline="2d",
        reminders_before="1d, 30m",
        reminder_channels="in_app, email",
        deadline_policy=DeadlinePolicy.ESCALATE,
        escalation_recipients={"roles": [on_call.name]},
    )

    template.full_clean()  # no error


def test_the_template_admin_edits_the_deadline_fields(client, requester, tenant_template, on_call):
    # given: a superuser at the console
    requester.is_staff = requester.is_superuser = True
    requester.save()
    client.force_login(requester)
    url = reverse("admin:approvals_approvaltemplate_change", args=[tenant_template.pk])
    form = {
        "name": tenant_template.name,
        "content": tenant_template.content,
        "sample_variables": '{"tenant_name": "Example", "workspace": "acme"}',
        "default_approvers": "[]",
        "is_active": "on",
        "decision_deadline": "2d",
        "reminders_before": "4h",
        "reminder_recipients": "{}",
        "reminder_channels": "in_app",
        "deadline_policy": "escalate",
        "escalation_recipients": f'{{"roles": ["{on_call.name}"]}}',
    }

    # when: a bad reminder, then a good form
    refused = client.post(url, {**form, "reminders_before": "3d"})
    saved = client.post(url, form)

    # then
    assert "would be due before the request is made" in refused.content.decode()
    assert saved.status_code == 302
    tenant_template.refresh_from_db()
    assert (tenant_template.decision_deadline, tenant_template.reminders_before) == ("2d", "4h")
    assert tenant_template.deadline_policy == DeadlinePolicy.ESCALATE


# --- a request's due time -----------------------------------------------------------------


def test_a_request_on_a_template_with_a_deadline_is_due_and_has_its_reminders(
    knox, request_tenant, deadline_template
):
    # when
    before = timezone.now()
    action = request_tenant()

    # then: due three days after the request, reminders 1 day and 2 hours before
    action.refresh_from_db()
    assert before + timedelta(days=3) <= action.due_at <= timezone.now() + timedelta(days=3)
    assert action.deadline_policy == DeadlinePolicy.WITHDRAW
    reminders = list(action.reminders.order_by("remind_at"))
    assert [r.before_deadline for r in reminders] == [timedelta(days=1), timedelta(hours=2)]
    assert [r.remind_at for r in reminders] == [
        action.due_at - timedelta(days=1),
        action.due_at - timedelta(hours=2),
    ]


def test_a_request_without_any_deadline_has_none(knox, request_tenant):
    action = request_tenant()

    action.refresh_from_db()
    assert action.due_at is None and action.deadline_policy == ""
    assert not action.reminders.exists()


def test_a_request_overrides_the_template_deadline_through_the_api(
    knox, requester, demo_workspace, deadline_template
):
    # when
    response = _client(requester).post(
        f"{URL}requests/", tenant_request_body(deadline="2d"), format="json"
    )

    # then
    assert response.status_code == 201, response.data
    action = PendingAction.objects.get()
    assert abs(action.due_at - action.created_at - timedelta(days=2)) < timedelta(seconds=2)
    shown = _client(requester).get(f"{URL}pending-actions/{action.pk}/").data
    assert shown["due_at"] is not None
    assert shown["deadline_policy"] == "withdraw"
    assert [r["before_deadline"] for r in shown["reminders"]] == ["1d", "2h"]
    assert [r["sent_at"] for r in shown["reminders"]] == [None, None]


@pytest.mark.parametrize(
    "deadline, words",
    [
        ("soon", "is not a duration"),
        ("-1d", "negative"),
        ("0s", "is not a duration"),
        ("12h", "reminders (1d, 2h) do not fit"),
    ],
)
def test_a_bad_deadline_override_is_a_400_on_the_field_and_writes_nothing(
    knox, requester, demo_workspace, deadline_template, deadline, words
):
    response = _client(requester).post(
        f"{URL}requests/", tenant_request_body(deadline=deadline), format="json"
    )

    assert response.status_code == 400
    assert words in " ".join(response.data["deadline"])
    assert not PendingAction.objects.exists()
    assert knox.calls().get("submit", 0) == 0


def test_the_console_request_form_takes_a_deadline(
    knox, client, requester, demo_workspace, deadline_template
):
    requester.is_staff = requester.is_superuser = True
    requester.save()
    client.force_login(requester)
    refused = post_request_form(client, deadline_template, deadline="tomorrow")
    accepted = post_request_form(client, deadline_template, deadline="4d")

    assert "is not a duration" in refused.content.decode()
    assert accepted.status_code == 302
    action = PendingAction.objects.get()
    assert abs(action.due_at - action.created_at - timedelta(days=4)) < timedelta(seconds=2)


# --- filters ------------------------------------------------------------------------------


@pytest.fixture
def three_deadlines(knox, request_tenant, deadline_template):
    """Actions due in 1 hour, in 2 days, and 1 hour ago (overdue), and one with none."""
    now = timezone.now()
    actions = {}
    for name, due in (("soon", 1), ("later", 48), ("late", -1)):
        action = request_tenant(name)
        action.due_at = now + timedelta(hours=due)
        action.save(update_fields=["due_at"])
        actions[name] = action
    deadline_template.decision_deadline = ""
    deadline_template.reminders_before = ""
    deadline_template.save()
    actions["none"] = request_tenant("none")
    return actions


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.data
    return {row["id"] for row in response.data["results"]}


def test_pending_actions_are_filtered_by_due_within_and_overdue(requester, three_deadlines):
    api = _client(requester)
    a = three_deadlines

    assert _ids(api.get(f"{URL}pending-actions/?due_within=2h")) == {a["soon"].pk}
    assert _ids(api.get(f"{URL}pending-actions/?due_within=3d")) == {a["soon"].pk, a["later"].pk}
    assert _ids(api.get(f"{URL}pending-actions/?overdue=true")) == {a["late"].pk}
    assert _ids(api.get(f"{URL}pending-actions/?overdue=false")) == {
        a["soon"].pk,
        a["later"].pk,
        a["none"].pk,
    }


@pytest.mark.parametrize(
    "query, field",
    [
        ("due_within=soon", "due_within"),
        ("due_within=-2h", "due_within"),
        ("due_within=0m", "due_within"),
        ("overdue=maybe", "overdue"),
    ],
)
def test_a_bad_due_filter_is_a_400_with_the_field(requester, three_deadlines, query, field):
    response = _client(requester).get(f"{URL}pending-actions/?{query}")

    assert response.status_code == 400
    assert field in response.data


def test_the_console_list_filters_overdue_and_shows_the_due_column(
    client, requester, three_deadlines
):
    requester.is_staff = requester.is_superuser = True
    requester.save()
    client.force_login(requester)
    url = reverse("admin:approvals_pendingaction_changelist")

    overdue = client.get(url, {"due": "overdue"})
    within = client.get(url, {"due": "1h"})

    assert [a.pk for a in overdue.context["cl"].result_list] == [three_deadlines["late"].pk]
    assert [a.pk for a in within.context["cl"].result_list] == [three_deadlines["soon"].pk]
    page = overdue.content.decode()
    assert "due within / overdue" in page
    assert "column-due_at" in page


# --- reminders ----------------------------------------------------------------------------


def test_a_due_reminder_goes_once_to_the_requester_and_the_template_recipients(
    knox, request_tenant, deadline_template, requester, reviewer
):
    # given: a request, and the moment its first reminder (1 day before) is due
    action = request_tenant()
    action.refresh_from_db()
    at = action.due_at - timedelta(days=1) + timedelta(seconds=1)

    # when: the sweep runs, and runs again
    first = pending_action_deadlines_sweep(now=at)
    second = pending_action_deadlines_sweep(now=at + timedelta(minutes=1))

    # then: one reminder, in-app to both, recorded; nothing the second time
    assert (first["reminders_sent"], first["notifications"]) == (1, 2)
    assert (second["reminders_sent"], second["notifications"]) == (0, 0)
    deliveries = NotificationDelivery.objects.order_by("recipient_user__username")
    assert [(d.recipient_user.username, d.channel) for d in deliveries] == [
        ("requester", "in_app"),
        ("reviewer", "in_app"),
    ]
    assert "Approval due in 1d" in deliveries[0].payload["subject"]
    sent = action.reminders.get(before_deadline=timedelta(days=1))
    assert sent.sent_at == at
    assert sorted(sent.recipients) == ["requester", "reviewer"]
    assert sorted(sent.delivery_ids) == sorted(d.pk for d in deliveries)
    assert action.reminders.get(before_deadline=timedelta(hours=2)).sent_at is None


def test_no_reminder_for_an_action_knox_already_decided(knox, request_tenant, deadline_template):
    action = request_tenant()
    knox.decide(action.ap_inf_id, KnoxStatus.REJECTED)
    pending_actions_poll()
    action.refresh_from_db()

    counts = pending_action_deadlines_sweep(now=action.due_at - timedelta(hours=1))

    assert counts["reminders_sent"] == 0
    assert not NotificationDelivery.objects.exists()


# --- expiry -------------------------------------------------------------------------------


def test_past_the_deadline_the_action_expires_audited_and_is_withdrawn_at_knox(
    knox, request_tenant, deadline_template
):
    # given
    action = request_tenant()
    action.refresh_from_db()

    # when: the sweep runs after the deadline
    counts = pending_action_deadlines_sweep(now=action.due_at + timedelta(seconds=1))

    # then
    assert (counts["expired"], counts["withdrawn"]) == (1, 1)
    action.refresh_from_db()
    assert action.status == ActionStatus.EXPIRED
    assert action.knox_withdrawn_at is not None and action.knox_withdraw_attempts == 1
    move = action.transitions.get(to_status=ActionStatus.EXPIRED)
    assert (move.from_status, move.actor_name) == ("pending", "system")
    assert "did not decide by the deadline" in move.reason
    assert knox.document(action.ap_inf_id)["status"] == KnoxStatus.WITHDRAWN
    assert action.approval_log.knox_status == KnoxStatus.WITHDRAWN
    # no reminder goes out for an expired action
    assert (
        pending_action_deadlines_sweep(now=action.due_at + timedelta(hours=1))["reminders_sent"]
        == 0
    )


def test_a_knox_failure_on_withdrawal_is_recorded_and_retried_never_lost(
    knox, request_tenant, deadline_template
):
    # given: Knox failing withdrawals
    action = request_tenant()
    action.refresh_from_db()
    knox.faults(withdraw="error")
    after = action.due_at + timedelta(seconds=1)

    # when: the sweep expires it
    counts = pending_action_deadlines_sweep(now=after)

    # then: our side is expired, Knox's failure recorded
    action.refresh_from_db()
    assert action.status == ActionStatus.EXPIRED
    assert (counts["expired"], counts["withdrawn"], counts["withdraw_failed"]) == (1, 0, 1)
    assert action.knox_withdrawn_at is None and action.knox_withdraw_attempts == 1
    assert "HTTP 500" in action.knox_withdraw_error
    assert knox.document(action.ap_inf_id)["status"] == KnoxStatus.IN_PROGRESS

    # when: Knox is back and the next sweep runs
    knox.faults()
    counts = pending_action_deadlines_sweep(now=after + timedelta(minutes=1))

    # then: withdrawn, once
    action.refresh_from_db()
    assert (counts["expired"], counts["withdrawn"]) == (0, 1)
    assert action.knox_withdrawn_at is not None and action.knox_withdraw_attempts == 2
    assert knox.document(action.ap_inf_id)["status"] == KnoxStatus.WITHDRAWN
    assert pending_action_deadlines_sweep(now=after + timedelta(minutes=2))["withdrawn"] == 0


def test_a_document_knox_approved_before_the_withdrawal_arrived_is_recorded_as_such(
    knox, request_tenant, deadline_template
):
    # given: Knox approved it, but our poll has not seen it before the deadline passed
    action = request_tenant()
    action.refresh_from_db()
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)

    # when
    counts = pending_action_deadlines_sweep(now=action.due_at + timedelta(seconds=1))

    # then: expired (never executed), and Knox's answer kept; not retried for ever
    action.refresh_from_db()
    assert action.status == ActionStatus.EXPIRED
    assert counts["withdrawn"] == 1 and counts["withdraw_failed"] == 0
    assert "already decided before the withdrawal: status 2" in action.knox_withdraw_error
    assert action.approval_log.knox_status == KnoxStatus.COMPLETE
    assert action.executed_at is None


def test_expiring_an_already_approved_action_is_a_409_and_changes_nothing(
    knox, request_tenant, deadline_template
):
    # given: approved and executed
    action = request_tenant()
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    pending_actions_poll()
    action.refresh_from_db()
    assert action.status == ActionStatus.EXECUTED

    # when / then: by hand it is refused with the current state
    with pytest.raises(InvalidTransition) as refused:
        pending_action_expire(pending_action_id=action.pk)
    assert refused.value.status_code == 409
    assert refused.value.current == ActionStatus.EXECUTED
    assert refused.value.code == "approvals.not_expirable"
    # and the sweep past its deadline leaves it alone
    counts = pending_action_deadlines_sweep(now=action.due_at + timedelta(days=1))
    assert counts["expired"] == 0
    action.refresh_from_db()
    assert action.status == ActionStatus.EXECUTED
    assert not action.transitions.filter(to_status=ActionStatus.EXPIRED).exists()


def test_an_expired_action_is_no_longer_polled_nor_executed(
    knox, request_tenant, deadline_template
):
    action = request_tenant()
    pending_action_expire(pending_action_id=action.pk)
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)  # a late approval, forced at Knox

    counts = pending_actions_poll()

    action.refresh_from_db()
    assert counts["checked"] == 0
    assert action.status == ActionStatus.EXPIRED


# --- escalation ---------------------------------------------------------------------------


def test_past_the_deadline_an_escalate_template_alerts_its_group_once_and_keeps_waiting(
    knox, request_tenant, escalate_template, on_call
):
    # given
    action = request_tenant()
    action.refresh_from_db()
    after = action.due_at + timedelta(seconds=1)

    # when: two sweeps after the deadline
    first = pending_action_deadlines_sweep(now=after)
    second = pending_action_deadlines_sweep(now=after + timedelta(minutes=1))

    # then: one alert to the group; the action still waits for Knox
    assert (first["escalated"], second["escalated"], first["expired"]) == (1, 0, 0)
    alert = Alert.objects.get()
    assert alert.alert_type == "approvals.deadline_passed"
    assert [r.group for r in alert.recipients.all()] == [on_call]
    assert alert.source_entity_id == str(action.pk)
    action.refresh_from_db()
    assert action.status == ActionStatus.PENDING
    assert (action.escalated_at, action.escalation_alert_id) == (after, alert.pk)
    assert knox.document(action.ap_inf_id)["status"] == KnoxStatus.IN_PROGRESS
    # Knox still decides it: approval executes as usual
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    pending_actions_poll()
    action.refresh_from_db()
    assert action.status == ActionStatus.EXECUTED


# --- the ledger, the schedule, the command -------------------------------------------------


def test_the_sweep_is_a_scheduled_run_recorded_in_the_ledger(
    knox, request_tenant, deadline_template
):
    # given: an action whose deadline has passed (put in the past)
    action = request_tenant()
    PendingAction.objects.filter(pk=action.pk).update(due_at=timezone.now() - timedelta(minutes=1))

    # when: the scheduled task runs
    counts = sweep_deadlines()

    # then
    assert counts["expired"] == 1
    run = OperationRun.objects.get(type="approvals.sweep_deadlines")
    assert run.outcome == "succeeded"
    assert run.summary_counts["expired"] == 1 and run.summary_counts["withdrawn"] == 1
    assert "approvals.sweep_deadlines" in {spec.key for spec in schedule_registry}


def test_the_command_runs_the_sweep_and_prints_the_counts(knox, request_tenant, deadline_template):
    action = request_tenant()
    PendingAction.objects.filter(pk=action.pk).update(due_at=timezone.now() - timedelta(minutes=1))

    output = _call("approvals_deadlines", "--batch-size", "10")

    assert "expired 1" in output and "withdrawn 1" in output
    assert OperationRun.objects.filter(type="approvals.sweep_deadlines").count() == 1


@pytest.mark.parametrize(
    "args, words",
    [
        (["--batch-size", "0"], "--batch-size must be a whole number from 1 to 1000"),
        (["--batch-size", "lots"], "--batch-size must be a whole number from 1 to 1000"),
        (["--expire", "x"], "--expire must be a whole number"),
        (["--expire", "999999"], "No pending action with id 999999"),
        (["--expire", "1", "--batch-size", "5"], "do not go together"),
    ],
)
def test_the_command_refuses_bad_arguments_in_one_line(db, args, words):
    with pytest.raises(CommandError) as refused:
        _call("approvals_deadlines", *args)

    assert words in str(refused.value)
    assert "\n" not in str(refused.value)
    assert not OperationRun.objects.filter(type="approvals.sweep_deadlines").exists()


def test_the_command_expires_one_action_and_refuses_a_decided_one(
    knox, request_tenant, deadline_template
):
    pending = request_tenant("Pending")
    decided = request_tenant("Decided")
    knox.decide(decided.ap_inf_id, KnoxStatus.REJECTED)
    pending_actions_poll()

    output = _call("approvals_deadlines", "--expire", str(pending.pk))
    with pytest.raises(CommandError) as refused:
        _call("approvals_deadlines", "--expire", str(decided.pk))

    assert f"pending action {pending.pk}: expired, withdrawn at Knox" in output
    assert "is rejected; it cannot become expired" in str(refused.value)
    assert PendingActionReminder.objects.filter(sent_at__isnull=False).count() == 0


def test_an_escalation_with_nobody_left_to_alert_is_recorded_once_in_the_ledger(
    knox, request_tenant, escalate_template, on_call
):
    # given: an escalate template whose group was deleted after the request
    action = request_tenant()
    on_call.delete()
    PendingAction.objects.filter(pk=action.pk).update(due_at=timezone.now() - timedelta(minutes=1))

    # when: two scheduled sweeps
    sweep_deadlines()
    sweep_deadlines()

    # then: no alert, one failure recorded (the first run), the action still pending
    assert not Alert.objects.exists()
    runs = list(OperationRun.objects.filter(type="approvals.sweep_deadlines").order_by("pk"))
    assert [run.outcome for run in runs] == ["partially_succeeded", "succeeded"]
    assert [f["code"] for f in runs[0].failure_summary] == ["approvals.escalation_undeliverable"]
    action.refresh_from_db()
    assert action.status == ActionStatus.PENDING
    assert action.escalated_at is not None and action.escalation_alert_id is None


# --- expire from the console ----------------------------------------------------------------


def _expire_from_console(client, action, **data):
    url = reverse("admin:approvals_pendingaction_object_action", args=[action.pk, "expire"])
    return url, client.post(url, data, follow=True)


def test_an_operator_expires_an_action_from_its_page_after_confirming(
    knox, client, requester, request_tenant, deadline_template
):
    from django.contrib.messages import constants, get_messages

    # given: an action with a deadline, and an operator on its page
    action = request_tenant()
    requester.is_staff = requester.is_superuser = True
    requester.save()
    client.force_login(requester)
    page = client.get(reverse("admin:approvals_pendingaction_change", args=[action.pk])).text
    assert "Expire now" in page

    # when: the button without the confirmation, then confirmed
    url, unconfirmed = _expire_from_console(client, action)
    action.refresh_from_db()
    assert "Expire this action now" in unconfirmed.text
    assert action.status == ActionStatus.PENDING
    _url, confirmed = _expire_from_console(client, action, confirmed="yes")

    # then: expired, audited with who did it, withdrawn at Knox, said in green
    action.refresh_from_db()
    assert action.status == ActionStatus.EXPIRED
    assert action.knox_withdrawn_at is not None
    assert knox.document(action.ap_inf_id)["status"] == KnoxStatus.WITHDRAWN
    move = action.transitions.get(to_status=ActionStatus.EXPIRED)
    assert move.reason == f"expired by {requester.get_username()}"
    messages = [(m.level, str(m)) for m in get_messages(confirmed.wsgi_request)]
    assert (
        constants.SUCCESS,
        f"Pending action {action.pk}: expired (deadline passed).",
    ) in messages


def test_expiring_from_the_console_while_knox_is_down_is_an_error_message(
    knox, client, requester, request_tenant, deadline_template
):
    from django.contrib.messages import constants, get_messages

    action = request_tenant()
    requester.is_staff = requester.is_superuser = True
    requester.save()
    client.force_login(requester)
    knox.faults(withdraw="error")

    _url, response = _expire_from_console(client, action, confirmed="yes")

    action.refresh_from_db()
    assert action.status == ActionStatus.EXPIRED and action.knox_withdrawn_at is None
    (level, text), *_ = [(m.level, str(m)) for m in get_messages(response.wsgi_request)]
    assert level == constants.ERROR
    assert "Knox has not confirmed the withdrawal yet" in text and "sweep" in text


def test_an_action_without_a_deadline_or_no_longer_in_flight_offers_no_expiry(
    knox, client, requester, request_tenant
):
    action = request_tenant()  # the plain template: no deadline
    requester.is_staff = requester.is_superuser = True
    requester.save()
    client.force_login(requester)

    page = client.get(reverse("admin:approvals_pendingaction_change", args=[action.pk])).text

    assert "Expire now" not in page
