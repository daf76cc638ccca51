import pytest
from django.core.exceptions import ValidationError

from approvals.choices import ActionStatus, FailureStage, KnoxStatus
from approvals.models import ApprovalLog, PendingAction
from approvals.registry import (
    any_requester,
    register_action_handler,
    unregister_action_handler,
)
from approvals.services import (
    ApprovalSubmitFailed,
    approval_request,
    pending_action_execute,
    pending_action_retry,
    pending_actions_poll,
)
from config.errors import InvalidTransition
from operations.models import Tenant

pytestmark = pytest.mark.django_db


def _transitions(action):
    return [(t.from_status, t.to_status) for t in action.transitions.all()]


def test_approve_executes_the_handler_once(knox, request_tenant):
    # given
    action = request_tenant("Initech")
    assert action.status == ActionStatus.PENDING
    document = knox.document(action.ap_inf_id)
    assert document["subject"] == "Create tenant Initech"
    assert [a["epId"] for a in document["aplns"]] == ["EP-REQ-1", "EP-BOSS-1"]

    # when
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    first = pending_actions_poll()
    second = pending_actions_poll()

    # then
    action.refresh_from_db()
    assert action.status == ActionStatus.EXECUTED
    assert Tenant.objects.filter(name="Initech").count() == 1
    assert action.execution_result["name"] == "Initech"
    assert first == {
        "checked": 1,
        "updated": 1,
        "executed": 1,
        "rejected": 0,
        "cancelled": 0,
        "failed": 0,
    }
    assert second["checked"] == 0 and second["executed"] == 0
    assert (
        pending_action_execute(ap_inf_id=action.ap_inf_id).execution_result
        == action.execution_result
    )
    assert Tenant.objects.filter(name="Initech").count() == 1
    assert _transitions(action) == [
        ("", "pending"),
        ("pending", "approved"),
        ("approved", "executing"),
        ("executing", "executed"),
    ]
    log = ApprovalLog.objects.get(ap_inf_id=action.ap_inf_id)
    assert log.knox_status == KnoxStatus.COMPLETE and log.decided_at is not None


@pytest.mark.parametrize("code", [KnoxStatus.DELEGATED_FINAL, KnoxStatus.POST_COMPLETE])
def test_delegated_and_post_complete_also_count_as_approved(knox, request_tenant, code):
    action = request_tenant()
    knox.decide(action.ap_inf_id, code)

    pending_actions_poll()

    action.refresh_from_db()
    assert action.status == ActionStatus.EXECUTED


def test_reject_closes_the_action_without_executing(knox, request_tenant):
    action = request_tenant()
    knox.decide(action.ap_inf_id, KnoxStatus.REJECTED, "budget is closed")

    counts = pending_actions_poll()

    action.refresh_from_db()
    assert action.status == ActionStatus.REJECTED
    assert counts["rejected"] == 1
    assert action.transitions.last().reason == "budget is closed"
    assert not Tenant.objects.filter(name="Initech").exists()


def test_withdrawn_in_knox_cancels_the_action(knox, request_tenant):
    action = request_tenant()
    knox.decide(action.ap_inf_id, KnoxStatus.WITHDRAWN)

    counts = pending_actions_poll()

    action.refresh_from_db()
    assert action.status == ActionStatus.CANCELLED
    assert counts["cancelled"] == 1


def test_documents_still_in_progress_are_left_alone_without_a_query_each(
    knox, request_tenant, django_assert_max_num_queries
):
    for n in range(5):
        request_tenant(f"Tenant {n}")

    with django_assert_max_num_queries(4):
        counts = pending_actions_poll()

    assert counts["checked"] == 5 and counts["updated"] == 0
    assert set(PendingAction.objects.values_list("status", flat=True)) == {ActionStatus.PENDING}
    assert ApprovalLog.objects.filter(last_checked_at__isnull=True).count() == 0


def test_an_unchanged_documents_last_check_is_renewed_only_once_it_is_older_than_the_setting(
    knox, request_tenant, settings
):
    from datetime import timedelta

    from django.utils import timezone

    # given: three documents in progress at Knox; one never stamped, one
    # stamped a minute ago, one stamped past KNOX_CHECK_STAMP_SECONDS
    settings.KNOX_CHECK_STAMP_SECONDS = 600
    never, fresh, stale = (request_tenant(f"Stamp {n}") for n in range(3))
    now = timezone.now()
    ApprovalLog.objects.filter(pk=never.approval_log_id).update(last_checked_at=None)
    ApprovalLog.objects.filter(pk=fresh.approval_log_id).update(
        last_checked_at=now - timedelta(seconds=60)
    )
    ApprovalLog.objects.filter(pk=stale.approval_log_id).update(
        last_checked_at=now - timedelta(seconds=601)
    )

    # when
    counts = pending_actions_poll()

    # then: all three were asked about; the fresh stamp was left as it was
    assert counts["checked"] == 3 and counts["failed"] == 0
    stamps = dict(
        ApprovalLog.objects.filter(
            pk__in=[a.approval_log_id for a in (never, fresh, stale)]
        ).values_list("pk", "last_checked_at")
    )
    assert stamps[never.approval_log_id] >= now
    assert stamps[stale.approval_log_id] >= now
    assert stamps[fresh.approval_log_id] == now - timedelta(seconds=60)


def test_knox_down_at_submit_fails_the_action_with_the_reason(knox, request_tenant):
    knox.faults(submit="error")

    with pytest.raises(ApprovalSubmitFailed) as error:
        request_tenant()

    action = PendingAction.objects.get()
    assert action.status == ActionStatus.FAILED
    assert action.failure_stage == FailureStage.SUBMIT
    assert "HTTP 500" in action.error_message
    assert error.value.extra["status"] == "failed"
    knox.faults()
    pending_actions_poll()
    action.refresh_from_db()
    assert action.status == ActionStatus.FAILED  # nothing executed, nothing polled
    assert not Tenant.objects.exists()


def test_knox_refusing_the_document_fails_it_with_knox_message(knox, request_tenant):
    knox.faults(submit="reject")

    with pytest.raises(ApprovalSubmitFailed, match="refused by the simulator"):
        request_tenant()


def test_a_submit_timeout_is_settled_by_the_next_poll(knox, request_tenant):
    # given: Knox takes the document but the answer never comes back in time
    knox.faults(submit="timeout", hang=3)
    action = request_tenant()
    assert action.status == ActionStatus.SUBMIT_UNKNOWN
    assert knox.document(action.ap_inf_id) is not None
    knox.faults()

    # when: the poller asks about it
    pending_actions_poll()

    # then: Knox has it, so it is an ordinary pending approval again
    action.refresh_from_db()
    assert action.status == ActionStatus.PENDING
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    pending_actions_poll()
    action.refresh_from_db()
    assert action.status == ActionStatus.EXECUTED


def test_a_submit_that_never_arrived_is_settled_as_failed(knox, request_tenant):
    knox.faults(submit="malformed")  # Knox answered garbage: the outcome is unknown
    action = request_tenant()
    assert action.status == ActionStatus.SUBMIT_UNKNOWN
    knox.reset()  # ...and Knox turns out not to have it

    pending_actions_poll()

    action.refresh_from_db()
    assert action.status == ActionStatus.FAILED
    assert action.failure_stage == FailureStage.SUBMIT
    assert "no record" in action.error_message


def test_a_malformed_answer_for_one_document_does_not_stop_the_cycle(knox, request_tenant):
    from approvals.tasks import poll_knox
    from operations.models import OperationRun

    bad = request_tenant("Bad")
    good = request_tenant("Good")
    knox.decide(bad.ap_inf_id, KnoxStatus.COMPLETE)
    knox.decide(good.ap_inf_id, KnoxStatus.COMPLETE)
    knox.faults(malformed_ids=[bad.ap_inf_id])

    counts = poll_knox()

    bad.refresh_from_db()
    good.refresh_from_db()
    assert good.status == ActionStatus.EXECUTED
    assert bad.status == ActionStatus.PENDING
    assert counts["failed"] == 1 and counts["executed"] == 1
    run = OperationRun.objects.get(type="approvals.poll_knox")
    assert run.outcome == "partially_succeeded"
    assert run.failure_summary[0]["code"] == "knox.protocol_error"
    assert f"Pending action {bad.pk}" in run.failure_summary[0]["message"]
    assert run.context["failed_ap_inf_ids"] == [bad.ap_inf_id]


def test_knox_down_during_the_poll_fails_the_cycle_softly(knox, request_tenant):
    request_tenant()
    knox.faults(statuses="error")

    counts = pending_actions_poll()

    assert counts["failed"] == 1 and counts["checked"] == 0


@pytest.fixture
def flaky_handler(demo_workspace):
    """A handler that writes, then fails the first time it runs."""
    calls = []

    def flaky(payload, *, pending_action):
        calls.append(payload)
        if len(calls) == 1:
            Tenant.objects.create(workspace=demo_workspace, name="half-written")
            raise RuntimeError("ERP said no: password=hunter2")
        return {"ok": True}

    register_action_handler("test.flaky", flaky, authorize=any_requester)
    yield calls
    unregister_action_handler("test.flaky")


def test_a_handler_exception_fails_the_action_then_retry_executes_it(
    knox, requester, tenant_template, flaky_handler
):
    # given
    action = approval_request(
        action_type="test.flaky",
        payload={"x": 1},
        title="Flaky",
        template_name=tenant_template.name,
        variables={"tenant_name": "x", "workspace": "y"},
        approvers=["EP-BOSS-1"],
        user=requester,
    )
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)

    # when
    counts = pending_actions_poll()

    # then: failed, its writes rolled back, the secret not kept
    action.refresh_from_db()
    assert counts["failed"] == 1
    assert action.status == ActionStatus.FAILED
    assert action.failure_stage == FailureStage.EXECUTE
    assert "ERP said no" in action.error_message and "hunter2" not in action.error_message
    assert not Tenant.objects.filter(name="half-written").exists()

    # when: an operator retries
    retried = pending_action_retry(pending_action_id=action.pk)

    # then
    assert retried.status == ActionStatus.EXECUTED
    assert retried.execution_result == {"ok": True}
    assert len(flaky_handler) == 2
    with pytest.raises(InvalidTransition):
        pending_action_retry(pending_action_id=action.pk)


def test_a_failed_submit_cannot_be_retried_as_an_execution(knox, request_tenant):
    knox.faults(submit="error")
    with pytest.raises(ApprovalSubmitFailed):
        request_tenant()
    action = PendingAction.objects.get()

    with pytest.raises(InvalidTransition) as error:
        pending_action_retry(pending_action_id=action.pk)

    assert error.value.extra["current_state"] == "failed (submit)"


def test_validation_reports_every_bad_field_and_writes_nothing(knox, tenant_template):
    from tests.operations.factories import UserFactory

    no_ep_id = UserFactory()

    with pytest.raises(ValidationError) as error:
        approval_request(
            action_type="operations.create_tenant",
            payload={"workspace": "nope"},
            title="x",
            template_name=tenant_template.name,
            variables={"tenant_name": "x", "extra": 1},
            approvers=[],
            user=no_ep_id,
        )

    fields = error.value.message_dict
    assert set(fields) == {"user", "variables", "approvers", "payload.workspace", "payload.name"}
    assert fields["variables"] == ["Missing variables: workspace.", "Unknown variables: extra."]
    assert not PendingAction.objects.exists() and not ApprovalLog.objects.exists()
    assert knox.calls() == {}


def test_unknown_action_type_and_inactive_template_are_refused(knox, requester, tenant_template):
    tenant_template.is_active = False
    tenant_template.save()

    with pytest.raises(ValidationError) as error:
        approval_request(
            action_type="nope.nothing",
            payload={},
            title="x",
            template_name=tenant_template.name,
            variables={},
            approvers=["EP-1"],
            user=requester,
        )

    assert "operations.create_tenant" in error.value.message_dict["action_type"][0]
    assert "not active" in error.value.message_dict["template_name"][0]


def test_a_script_variable_arrives_escaped_in_the_submitted_contents(knox, request_tenant):
    action = request_tenant("<script>alert(1)</script>")

    contents = knox.document(action.ap_inf_id)["contents"]

    assert "<script>" not in contents
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in contents
    log = ApprovalLog.objects.get(ap_inf_id=action.ap_inf_id)
    assert log.contents == contents
    import hashlib

    assert log.contents_sha256 == hashlib.sha256(contents.encode()).hexdigest()


def test_one_bad_document_in_a_batch_does_not_hold_up_the_others(knox, request_tenant):
    # given: two approvals, and a third document Knox has lost (it raises while settling)
    good = [request_tenant("Alpha"), request_tenant("Beta")]
    lost = request_tenant("Lost")
    knox.reset()
    knox.add(*({"apInfId": a.ap_inf_id, "status": KnoxStatus.COMPLETE} for a in good))

    # when
    counts = pending_actions_poll()

    # then: the batch fell back to one by one; the two ran, the lost one is reported
    assert counts["executed"] == 2 and counts["failed"] == 1
    assert set(Tenant.objects.values_list("name", flat=True)) >= {"Alpha", "Beta"}
    lost.refresh_from_db()
    assert lost.status == ActionStatus.PENDING


def test_a_rule_watching_pending_actions_sees_every_action_the_poll_settles(
    knox, request_tenant, request
):
    # given: a rule on pending-action updates (the poll then saves each row
    # with its signals instead of writing the batch in bulk) and three approvals
    from automation.entities import invalidate_watch_index
    from automation.models import AutomationEvent
    from tests.automation.factories import alert_action, make_rule

    make_rule(
        name="watch approvals",
        entity="approvals.PendingAction",
        trigger="on_update",
        actions=[alert_action(title="Action {{id}} is {{status}}", message="Action {{id}} moved.")],
    )
    invalidate_watch_index()
    request.addfinalizer(invalidate_watch_index)  # the rule goes with the test's rollback
    actions = [request_tenant(f"Watched {i}") for i in range(3)]
    for action in actions:
        knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    AutomationEvent.objects.all().delete()

    # when
    pending_actions_poll()

    # then: one update event per action, carrying the move to executed
    events = AutomationEvent.objects.filter(entity__model_label="approvals.PendingAction")
    assert sorted(int(e.object_pk) for e in events) == sorted(a.pk for a in actions)
    assert all(e.new_values["status"] == ActionStatus.EXECUTED for e in events)
    assert all("status" in e.changed_fields for e in events)


def test_without_a_rule_watching_pending_actions_the_poll_writes_them_in_one_statement(
    knox, request_tenant
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from automation.entities import invalidate_watch_index

    # given: three approvals, no rule watching pending actions
    invalidate_watch_index()
    actions = [request_tenant(f"Bulk {i}") for i in range(3)]
    for action in actions:
        knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)

    # when
    with CaptureQueriesContext(connection) as queries:
        pending_actions_poll()

    # then: the three rows' moves went in one statement (UPDATE … FROM unnest
    # on PostgreSQL, one executemany elsewhere), all executed
    writes = [
        q["sql"] for q in queries.captured_queries if 'UPDATE "approvals_pendingaction"' in q["sql"]
    ]
    assert len(writes) == 1
    assert (
        "unnest" in writes[0]
        if connection.vendor == "postgresql"
        else writes[0].startswith("3 times:")
    )
    assert set(
        PendingAction.objects.filter(pk__in=[a.pk for a in actions]).values_list(
            "status", flat=True
        )
    ) == {ActionStatus.EXECUTED}
