"""Issue 8, item 3: what approvers read in Knox is bound to the payload that
runs. The document always carries the handler's summary of the validated
payload; templates may show payload fields, filled only from the payload; the
approval log keeps a hash of the payload, and a payload changed after the
submit is not run. Knox is the real simulator process."""

import hashlib
import json

import pytest
from django.core.exceptions import ValidationError

from approvals.choices import ActionStatus, FailureStage, KnoxStatus
from approvals.models import ApprovalLog, PendingAction
from approvals.registry import any_requester, register_action_handler, unregister_action_handler
from approvals.services import approval_request, pending_actions_poll
from operations.models import Tenant
from tests.approvals.factories import ApprovalTemplateFactory

pytestmark = pytest.mark.django_db


def test_the_document_names_what_the_payload_will_do_whatever_the_variables_say(
    knox, request_tenant
):
    # given: the wording says tenant "X", the payload creates tenant "Y"
    action = request_tenant(
        "Y", variables={"tenant_name": "X", "workspace": "acme"}, title="Create tenant X"
    )

    # when: Knox receives the document
    contents = knox.document(action.ap_inf_id)["contents"]

    # then: it says, first, what will run: tenant Y in Acme (acme)
    summary = contents.split('<div class="bureau-action">', 1)[1].split("</div>", 1)[0]
    assert contents.startswith('<div class="bureau-action">')
    assert "operations.create_tenant" in summary
    assert "<dt>Create tenant</dt><dd>Y</dd>" in summary
    assert "<dt>In workspace</dt><dd>Acme (acme)</dd>" in summary
    assert "X" not in summary


def test_the_log_keeps_hashes_of_the_contents_and_of_the_payload(knox, request_tenant):
    action = request_tenant("Initech")

    log = ApprovalLog.objects.get(ap_inf_id=action.ap_inf_id)
    sent = knox.document(action.ap_inf_id)["contents"]

    assert log.contents == sent
    assert log.contents_sha256 == hashlib.sha256(sent.encode()).hexdigest()
    canonical = json.dumps(
        {"name": "Initech", "workspace": "acme"}, separators=(",", ":"), sort_keys=True
    )
    assert log.payload_sha256 == hashlib.sha256(canonical.encode()).hexdigest()


def test_a_payload_changed_after_the_submit_is_not_run(knox, request_tenant):
    # given: approval requested for tenant "Initech"
    action = request_tenant("Initech")

    # when: someone changes the stored payload, then Knox approves
    PendingAction.objects.filter(pk=action.pk).update(
        action_payload={"workspace": "acme", "name": "Evil Corp"}
    )
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    pending_actions_poll()

    # then: nothing ran; the action failed at execution with a clear code
    action.refresh_from_db()
    assert action.status == ActionStatus.FAILED
    assert action.failure_stage == FailureStage.EXECUTE
    assert action.failure_code == "approvals.payload_mismatch"
    assert not Tenant.objects.exists()


@pytest.fixture
def tenant_wording(db):
    return ApprovalTemplateFactory(
        name="Bound wording",
        content="<p>Create <b>{{payload.name}}</b> in {{payload.workspace}}. {{note}}</p>",
        sample_variables={"payload.name": "Initech", "payload.workspace": "acme", "note": "-"},
    )


def test_a_template_can_show_payload_fields_filled_from_the_payload(
    knox, requester, tenant_wording
):
    action = approval_request(
        action_type="operations.create_tenant",
        payload={"workspace": "acme", "name": "<Y>"},
        title="Create a tenant",
        template_name=tenant_wording.name,
        variables={"note": "Thanks."},
        approvers=["EP-BOSS-1"],
        user=requester,
    )

    contents = knox.document(action.ap_inf_id)["contents"]
    assert "<p>Create <b>&lt;Y&gt;</b> in acme. Thanks.</p>" in contents


def test_callers_may_not_fill_payload_fields_themselves(knox, requester, tenant_wording):
    with pytest.raises(ValidationError) as error:
        approval_request(
            action_type="operations.create_tenant",
            payload={"workspace": "acme", "name": "Y"},
            title="Create a tenant",
            template_name=tenant_wording.name,
            variables={"note": "", "payload.name": "X"},
            approvers=["EP-BOSS-1"],
            user=requester,
        )

    assert error.value.message_dict["variables"] == [
        "payload.name: payload fields come from the payload, not from variables."
    ]
    assert not PendingAction.objects.exists() and knox.calls() == {}


def test_a_template_showing_a_field_the_payload_lacks_is_refused(knox, requester):
    template = ApprovalTemplateFactory(content="<p>{{payload.budget}}</p>")

    with pytest.raises(ValidationError) as error:
        approval_request(
            action_type="operations.create_tenant",
            payload={"workspace": "acme", "name": "Y"},
            title="Create a tenant",
            template_name=template.name,
            variables={},
            approvers=["EP-BOSS-1"],
            user=requester,
        )

    assert error.value.message_dict["payload"] == [
        "The template shows payload.budget, which this payload does not have."
    ]
    assert knox.calls() == {}


@pytest.fixture
def plain_handler(db):
    """A handler with no serializer and no summary of its own."""
    register_action_handler(
        "test.plain", lambda payload, **_: {"ok": True}, authorize=any_requester
    )
    yield
    unregister_action_handler("test.plain")


def test_without_a_summary_of_its_own_a_handler_shows_the_payload_fields_escaped(
    knox, requester, tenant_template, plain_handler
):
    action = approval_request(
        action_type="test.plain",
        payload={"amount": 12, "vendor": "<script>x</script>", "lines": [1, 2]},
        title="Plain",
        template_name=tenant_template.name,
        variables={"tenant_name": "x", "workspace": "y"},
        approvers=["EP-BOSS-1"],
        user=requester,
    )

    contents = knox.document(action.ap_inf_id)["contents"]
    assert (
        "<dl><dt>amount</dt><dd>12</dd><dt>vendor</dt><dd>&lt;script&gt;x&lt;/script&gt;</dd>"
        "<dt>lines</dt><dd>[1, 2]</dd></dl>"
    ) in contents
    assert "<script>" not in contents


def test_a_payload_the_database_stores_differently_still_matches_its_hash(
    knox, requester, tenant_template, plain_handler
):
    # given: values PostgreSQL's jsonb gives back in another form (1e20 comes
    # back as an integer, keys in another order)
    payload = {"z": 1e20, "a": {"é": [1.0, 0.1, None, True]}, "big": 12345678901234567890}
    action = approval_request(
        action_type="test.plain",
        payload=payload,
        title="Plain",
        template_name=tenant_template.name,
        variables={"tenant_name": "x", "workspace": "y"},
        approvers=["EP-BOSS-1"],
        user=requester,
    )

    # when
    knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    pending_actions_poll()

    # then: it is the same payload, so it runs
    action.refresh_from_db()
    assert action.status == ActionStatus.EXECUTED, action.error_message
