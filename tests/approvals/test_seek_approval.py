"""The automation action seek_approval: a rule asks Knox for approval. The
pending action is written in the worker's transaction; the document goes to
Knox (the real simulator process) only once that has committed."""

import pytest
from django.core.exceptions import ValidationError
from django_q.conf import Conf

from approvals.choices import ActionStatus, KnoxStatus
from approvals.models import PendingAction
from approvals.services import knox_profile_set, pending_actions_poll
from automation.engine import outbox_process
from automation.entities import entities_sync, invalidate_watch_index
from automation.models import AutomationExecution
from automation.services import rule_dry_run
from operations.models import Tenant
from tests.automation.factories import make_rule
from tests.operations.factories import TenantFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _automation(db, monkeypatch):
    invalidate_watch_index()
    entities_sync()
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
    make_rule(actor=requester, trigger="on_create", actions=[seek(requested_by=requester.username)])

    # when: a tenant is created and the worker processes the event
    with django_capture_on_commit_callbacks(execute=True):
        TenantFactory(name="Initech", workspace=WorkspaceFactory())
    with django_capture_on_commit_callbacks(execute=True):
        outbox_process()

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
    pending_actions_poll()
    assert Tenant.objects.filter(name="Initech (EU)", workspace=demo_workspace).exists()


def test_nothing_reaches_knox_when_the_workers_transaction_does_not_commit(
    knox, requester, demo_workspace, tenant_template, django_capture_on_commit_callbacks
):
    make_rule(actor=requester, trigger="on_create", actions=[seek(requested_by=requester.username)])
    TenantFactory(name="Initech")  # its event waits in the outbox (on-commit not run)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outbox_process()

    action = PendingAction.objects.get()
    assert knox.document(action.ap_inf_id) is None  # the submit waits for the commit
    assert action.approval_log.submitted_at is None
    assert callbacks  # …which is where it was queued


def test_the_dry_run_shows_the_request_and_sends_nothing(
    knox, requester, demo_workspace, tenant_template
):
    rule = make_rule(
        actor=requester, trigger="on_create", actions=[seek(requested_by=requester.username)]
    )
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
        pending_actions_poll()

    # then
    assert Alert.objects.get().title == "operations.create_tenant executed"


def test_a_rule_cannot_ask_in_someone_elses_name_for_what_its_editor_may_not(
    knox, requester, demo_workspace, tenant_template, django_capture_on_commit_callbacks
):
    # given: a rule written by someone who may not create tenants in acme, naming
    # as requester an operator of acme (who may)
    outsider = UserFactory(username="outsider")
    make_rule(actor=outsider, trigger="on_create", actions=[seek(requested_by=requester.username)])

    # when: the rule fires
    with django_capture_on_commit_callbacks(execute=True):
        TenantFactory(name="Initech", workspace=WorkspaceFactory())
    with django_capture_on_commit_callbacks(execute=True):
        outbox_process()

    # then: refused as if the workspace did not exist; nothing written or sent
    execution = AutomationExecution.objects.get()
    assert execution.status == "failed"
    assert "No workspace you may create tenants in has this slug." in execution.error_message
    assert not PendingAction.objects.exists()
    assert knox.calls() == {}
    assert not Tenant.objects.filter(name="Initech (EU)").exists()


def test_the_requester_must_be_allowed_too(knox, requester, demo_workspace, tenant_template):
    # given: a rule by the operator, naming as requester someone with an EP ID
    # who is no member of acme
    bystander = UserFactory(username="bystander")
    knox_profile_set(user=bystander, ep_id="EP-BY-1")
    rule = make_rule(
        actor=requester, trigger="on_create", actions=[seek(requested_by=bystander.username)]
    )
    tenant = TenantFactory(name="Initech")

    # when: dry-run
    result = rule_dry_run(rule=rule, entity="operations.Tenant", object_id=tenant.pk)

    # then
    assert "No workspace you may create tenants in" in str(result["actions"][0])
    assert not PendingAction.objects.exists()
    assert knox.calls() == {}


def test_without_approvers_the_templates_default_line_is_used(
    knox, requester, demo_workspace, tenant_template, django_capture_on_commit_callbacks
):
    # given: a template with a default approval line, and a rule naming no approvers
    tenant_template.default_approvers = [{"ep_id": "EP-LINE-1", "role": 2}]
    tenant_template.save()
    action_config = seek()
    del action_config["action_config"]["approvers"]
    make_rule(actor=requester, trigger="on_create", actions=[action_config])

    # when
    with django_capture_on_commit_callbacks(execute=True):
        TenantFactory(name="Initech", workspace=WorkspaceFactory())
    with django_capture_on_commit_callbacks(execute=True):
        outbox_process()

    # then
    action = PendingAction.objects.get()
    aplns = knox.document(action.ap_inf_id)["aplns"]
    assert [(a["epId"], a["role"]) for a in aplns] == [("EP-REQ-1", "0"), ("EP-LINE-1", "2")]


def test_a_rule_without_approvers_needs_a_template_with_a_default_line(requester, tenant_template):
    action_config = seek()
    del action_config["action_config"]["approvers"]

    with pytest.raises(ValidationError) as error:
        make_rule(actor=requester, trigger="on_create", actions=[action_config])

    assert "approvers required (the template has no default approval line)" in str(error.value)
