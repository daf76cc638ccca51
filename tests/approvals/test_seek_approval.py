"""The automation action seek_approval: a rule asks Knox for approval. The
pending action is written in the worker's transaction; the document goes to
Knox (the real simulator process) only once that has committed."""

import pytest
from django.core.exceptions import ValidationError
from django_q.conf import Conf

from approvals.choices import ActionStatus, KnoxStatus
from approvals.models import PendingAction
from approvals.services import check_pending_approvals
from automation.dry_run import rule_dry_run
from automation.engine import process_outbox
from automation.entities import invalidate_watch_index, sync_entities
from automation.models import AutomationExecution
from operations.models import Tenant
from tests.automation.factories import make_rule
from tests.operations.factories import TenantFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _automation(db, monkeypatch):
    invalidate_watch_index()
    sync_entities()
    monkeypatch.setattr(Conf, "SYNC", True)
    yield
    invalidate_watch_index()


def seek(**config):
    return {
        "name": "ask for approval",
        "action_type": "seek_approval",
        "execution_order": 1,
        "action_config": {
            "action_type": "operations.create_tenant",
            "payload": {"workspace": "acme", "name": "{{name}} (EU)"},
            "title": "Create an EU twin of {{name}}",
            "template_name": "New tenant",
            "variables": {"tenant_name": "{{name}} (EU)", "workspace": "acme"},
            "approvers": ["EP-BOSS-1"],
            **config,
        },
    }


def test_a_rule_requests_approval_and_the_document_reaches_knox_after_commit(
    knox, requester, demo_workspace, tenant_template, django_capture_on_commit_callbacks
):
    # given: a rule on new tenants, requested in the name of a user with an EP ID
    make_rule(trigger="on_create", actions=[seek(requested_by=requester.username)])

    # when: a tenant is created and the worker processes the event
    with django_capture_on_commit_callbacks(execute=True):
        TenantFactory(name="Initech", workspace=WorkspaceFactory())
    with django_capture_on_commit_callbacks(execute=True):
        process_outbox()

    # then: one pending action, submitted to Knox once the worker committed
    action = PendingAction.objects.get()
    assert action.status == ActionStatus.PENDING
    assert action.action_payload == {"workspace": "acme", "name": "Initech (EU)"}
    assert action.approval_log.submitted_at is not None
    assert knox.document(action.ap_inf_id)["subject"] == "Create an EU twin of Initech"
    execution = AutomationExecution.objects.get()
    assert execution.status == "success"

    # and once approved, the handler runs
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    check_pending_approvals()
    assert Tenant.objects.filter(name="Initech (EU)", workspace=demo_workspace).exists()


def test_nothing_reaches_knox_when_the_workers_transaction_does_not_commit(
    knox, requester, demo_workspace, tenant_template, django_capture_on_commit_callbacks
):
    make_rule(trigger="on_create", actions=[seek(requested_by=requester.username)])
    TenantFactory(name="Initech")  # its event waits in the outbox (on-commit not run)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        process_outbox()

    action = PendingAction.objects.get()
    assert knox.document(action.ap_inf_id) is None  # the submit waits for the commit
    assert action.approval_log.submitted_at is None
    assert callbacks  # …which is where it was queued


def test_the_dry_run_shows_the_request_and_sends_nothing(
    knox, requester, demo_workspace, tenant_template
):
    rule = make_rule(trigger="on_create", actions=[seek(requested_by=requester.username)])
    tenant = TenantFactory(name="Initech")

    result = rule_dry_run(rule=rule, entity="operations.Tenant", object_id=tenant.pk)

    would = result["actions"][0]["would"]["would_request_approval"]
    assert would["title"] == "Create an EU twin of Initech"
    assert would["requested_by"] == requester.username
    assert not PendingAction.objects.exists()
    assert knox.calls() == {}


@pytest.mark.parametrize(
    "config, message",
    [
        ({"action_type": "nope.nothing"}, "no handler for action type 'nope.nothing'"),
        ({"template_name": "Missing"}, "no active approval template 'Missing'"),
        ({"approvers": "EP-1"}, "approvers must be a list"),
        ({"requested_by": "ghost"}, "no user 'ghost'"),
        ({"surprise": 1}, "unknown keys surprise"),
    ],
)
def test_a_bad_config_is_refused_when_the_rule_is_saved(
    requester, tenant_template, config, message
):
    with pytest.raises(ValidationError) as error:
        make_rule(trigger="on_create", actions=[seek(**config)])

    assert message in str(error.value)


def test_the_pollers_transitions_are_events_that_rules_see(
    knox, request_tenant, django_capture_on_commit_callbacks
):
    # given: a rule on pending actions that reach "executed"
    from automation.models import Alert
    from tests.automation.factories import alert_action

    make_rule(
        entity="approvals.PendingAction",
        trigger="on_update",
        conditions=[{"field_name": "status", "operator": "changed_to", "value": "executed"}],
        actions=[alert_action(title="{{action_type}} executed", message="{{ap_inf_id}} ran")],
    )
    action = request_tenant("Watched")
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)

    # when: the poller settles it (in a batch) and the worker runs
    with django_capture_on_commit_callbacks(execute=True):
        check_pending_approvals()

    # then
    assert Alert.objects.get().title == "operations.create_tenant executed"
