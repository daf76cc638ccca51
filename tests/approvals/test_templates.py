"""Issue 8, item 20: a template may carry a default approval line (seed 001:
approvers are optional), and a template whose placeholders the substitution
would not fill is refused when it is saved, not sent to Knox as literal text.
Knox is the real simulator process."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from approvals.models import ApprovalLog, ApprovalTemplate, PendingAction
from tests.approvals.factories import ApprovalTemplateFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/approvals/"


def _request(user, **overrides):
    client = APIClient()
    client.force_authenticate(user)
    body = {
        "action_type": "operations.create_tenant",
        "payload": {"workspace": "acme", "name": "Initech"},
        "title": "Create tenant Initech",
        "template_name": "New tenant",
        "variables": {"tenant_name": "Initech", "workspace": "acme"},
    }
    body.update(overrides)
    return client.post(f"{URL}requests/", body, format="json")


def test_a_request_without_approvers_uses_the_templates_default_line(
    knox, requester, tenant_template
):
    # given: a template whose default approval line is a consult then an approval
    tenant_template.default_approvers = [
        {"ep_id": "EP-CONSULT-1", "role": 2},
        {"ep_id": "EP-BOSS-1", "role": 1},
    ]
    tenant_template.full_clean()
    tenant_template.save()

    # when: the request names no approvers
    response = _request(requester)

    # then: Knox receives the drafter, then the template's line with its roles
    assert response.status_code == 201, response.data
    aplns = knox.document(response.data["ap_inf_id"])["aplns"]
    assert [(a["epId"], a["seq"], a["role"]) for a in aplns] == [
        ("EP-REQ-1", "0", "0"),
        ("EP-CONSULT-1", "1", "2"),
        ("EP-BOSS-1", "2", "1"),
    ]
    assert ApprovalLog.objects.get().approvers == [
        {"ep_id": "EP-CONSULT-1", "seq": 1, "role": 2},
        {"ep_id": "EP-BOSS-1", "seq": 2, "role": 1},
    ]


def test_approvers_named_in_the_request_replace_the_default_line(knox, requester, tenant_template):
    tenant_template.default_approvers = [{"ep_id": "EP-CONSULT-1", "role": 2}]
    tenant_template.save()

    response = _request(requester, approvers=["EP-OTHER-1"])

    aplns = knox.document(response.data["ap_inf_id"])["aplns"]
    assert [(a["epId"], a["role"]) for a in aplns] == [("EP-REQ-1", "0"), ("EP-OTHER-1", "1")]


@pytest.mark.parametrize("approvers", [None, []], ids=["left out", "empty"])
def test_no_approvers_and_no_default_line_is_still_a_400(
    knox, requester, tenant_template, approvers
):
    overrides = {} if approvers is None else {"approvers": approvers}

    response = _request(requester, **overrides)

    assert response.status_code == 400
    assert response.data["approvers"] == [
        "At least one approver's EP ID is required (the template has no default approval line)."
    ]
    assert not PendingAction.objects.exists() and knox.calls() == {}


@pytest.mark.parametrize(
    "line, message",
    [
        ({"ep_id": "EP-1"}, "A list of"),
        ([{"ep_id": "EP-1"}], 'an object with "ep_id" and "role" only'),
        ([{"ep_id": "", "role": 1}], "an EP ID of 1 to 64 characters"),
        ([{"ep_id": "EP-1", "role": 0}], "role is one of 1, 2, 3, 4, 7, 9"),
        ([{"ep_id": "EP-1", "role": "1"}], "role is one of"),
        ([{"ep_id": "EP-1", "role": 1}, {"ep_id": "EP-1", "role": 2}], "EP-1 is listed twice"),
    ],
)
def test_a_malformed_default_line_is_refused_when_saved(line, message):
    template = ApprovalTemplateFactory.build(default_approvers=line)

    with pytest.raises(ValidationError) as error:
        template.full_clean()

    assert message in " ".join(error.value.message_dict["default_approvers"])


@pytest.mark.parametrize(
    "content, shown",
    [
        ("<p>{{두 단어}}</p>", "{{두 단어}}"),
        ("<p>{{}}</p>", "{{}}"),
        ("<p>{{ a{b} }}</p>", "{{ a{b} }}"),
        ("<p>{{unclosed</p>", "{{unclosed"),
        ("<p>{{payload}}</p>", "{{payload}}"),
    ],
)
def test_placeholders_the_substitution_would_not_fill_are_refused_when_saved(content, shown):
    template = ApprovalTemplateFactory.build(content=content)

    with pytest.raises(ValidationError) as error:
        template.full_clean()

    assert shown in error.value.message_dict["content"][0]


def test_names_the_substitution_fills_are_accepted():
    template = ApprovalTemplateFactory.build(
        content="<h1>{{ 제목 }}</h1>{{상세_테이블}}{{payload.name}}<style>a{b:c}}</style>"
    )

    template.full_clean()


def test_the_admin_form_refuses_such_a_template(client, requester):
    requester.is_staff = requester.is_superuser = True
    requester.save()
    client.force_login(requester)

    response = client.post(
        reverse("admin:approvals_approvaltemplate_add"),
        {
            "name": "Broken",
            "content": "<p>{{두 단어}}</p>",
            "sample_variables": "{}",
            "default_approvers": "[]",
            "is_active": "on",
        },
    )

    assert response.status_code == 200
    assert "{{두 단어}} is not a variable" in response.content.decode()
    assert not ApprovalTemplate.objects.filter(name="Broken").exists()


def test_the_admin_form_saves_a_default_line(client, requester):
    requester.is_staff = requester.is_superuser = True
    requester.save()
    client.force_login(requester)

    response = client.post(
        reverse("admin:approvals_approvaltemplate_add"),
        {
            "name": "With a line",
            "content": "<p>{{a}}</p>",
            "sample_variables": '{"a": 1}',
            "default_approvers": json.dumps([{"ep_id": "EP-1", "role": 1}]),
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    assert ApprovalTemplate.objects.get(name="With a line").default_approvers == [
        {"ep_id": "EP-1", "role": 1}
    ]


def test_a_template_saved_broken_before_this_check_is_not_sent(knox, requester, tenant_template):
    # given: a template made broken behind the model's back (as before this check)
    ApprovalTemplate.objects.filter(pk=tenant_template.pk).update(
        content="<p>{{tenant_name}} {{두 단어}} {{workspace}}</p>"
    )

    response = _request(requester, approvers=["EP-BOSS-1"])

    assert response.status_code == 400
    assert "{{두 단어}} is not a variable" in response.data["template_name"][0]
    assert not PendingAction.objects.exists() and knox.calls() == {}


def test_the_templates_api_tells_clients_what_to_give(requester, tenant_template):
    ApprovalTemplateFactory(name="Bound", content="{{payload.name}} {{note}}", default_approvers=[])
    tenant_template.default_approvers = [{"ep_id": "EP-1", "role": 1}]
    tenant_template.save()
    client = APIClient()
    client.force_authenticate(requester)

    results = {t["name"]: t for t in client.get(f"{URL}templates/").data["results"]}

    assert results["Bound"]["variables"] == ["note"]  # payload.name comes from the payload
    assert results["Bound"]["has_default_approvers"] is False
    assert results["New tenant"]["has_default_approvers"] is True


def test_the_schema_allows_a_blank_failure_stage(requester, request_tenant, knox):
    # given: an action that has not failed answers failure_stage ""
    action = request_tenant("Initech")
    client = APIClient()
    client.force_authenticate(requester)
    assert client.get(f"{URL}pending-actions/{action.pk}/").data["failure_stage"] == ""

    # when
    schema = json.loads(
        client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )

    # then: the declared field admits ""
    components = schema["components"]["schemas"]
    declared = components["PendingAction"]["properties"]["failure_stage"]
    allowed = set()
    for option in declared.get("oneOf", declared.get("allOf", [])):
        target = components[option["$ref"].rsplit("/", 1)[1]]
        allowed.update(target["enum"])
    assert "" in allowed and {"submit", "execute"} <= allowed
