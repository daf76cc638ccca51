"""Issue 12, item 4: the console's *Request approval* form guides. Choosing a
template shows its variables with the sample values; choosing an action type
shows the fields of its payload serializer (a JSON box only for a handler
without one); the approvers are looked up by name with their EP IDs. The write
is the API's service; a bad value is an error on its field and writes nothing.
And the template's preview is exactly the text Knox receives. Knox is the
real simulator process."""

from __future__ import annotations

import html
import re

import pytest
from django import forms
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework import serializers

from approvals.choices import ActionStatus
from approvals.models import ApprovalLog, PendingAction
from approvals.registry import any_requester, register_action_handler, unregister_action_handler
from approvals.services import approval_request, knox_profile_set
from operations.choices import MemberRole
from tests.approvals.factories import ApprovalTemplateFactory, post_request_form, staff_with
from tests.operations.factories import (
    MembershipFactory,
    TenantFactory,
    UserFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db

REQUEST = "admin:approvals_pendingaction_request"
LOOKUP = "admin:approvals_pendingaction_request_approvers"


@pytest.fixture
def console(client, requester):
    """The requester (EP-REQ-1, an operator of acme) at the console: staff who
    may see pending actions and approval templates, not a superuser."""
    requester.is_staff = True
    requester.save()
    requester.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="approvals",
            codename__in=["view_pendingaction", "view_approvaltemplate"],
        )
    )
    client.force_login(requester)
    return client


@pytest.fixture
def boss(db):
    """Someone to approve: Bo Park, EP-BOSS-1."""
    user = UserFactory(username="bpark", first_name="Bo", last_name="Park")
    knox_profile_set(user=user, ep_id="EP-BOSS-1")
    return user


@pytest.fixture
def json_handler(db):
    """An action type whose handler declares no payload serializer."""
    register_action_handler("test.json_only", lambda payload, **_: {}, authorize=any_requester)
    yield "test.json_only"
    unregister_action_handler("test.json_only")


def _form_page(client, **query):
    response = client.get(reverse(REQUEST), query)
    assert response.status_code == 200
    return response


def test_choosing_a_template_shows_its_variables_with_the_sample_values(console, tenant_template):
    # when: the form is asked for with a template chosen
    form = _form_page(console, template=tenant_template.pk).context["form"]

    # then: one field per variable, in the template's order, holding its sample
    assert form.variable_names == ["tenant_name", "workspace"]
    assert form["variable__tenant_name"].value() == "Example"
    assert form["variable__workspace"].value() == "acme"
    assert form["template"].value() == str(tenant_template.pk)
    # and no payload box before an action type is chosen
    assert "payload" not in form.fields
    assert not form.payload_names


def test_choosing_an_action_type_shows_its_payload_fields_from_the_serializer(
    console, tenant_template, demo_workspace
):
    # given: a workspace the requester may not create tenants in
    WorkspaceFactory(slug="elsewhere")

    # when
    response = _form_page(
        console, template=tenant_template.pk, action_type="operations.create_tenant"
    )
    form = response.context["form"]

    # then: the serializer's fields, not a JSON box
    assert form.payload_names == ["workspace", "name"]
    assert "payload" not in form.fields
    page = response.content.decode()
    assert 'name="payload__name"' in page
    assert 'name="payload"' not in page
    # the workspace is chosen among those the requester may use, by slug
    assert form.fields["payload__workspace"].choices == [
        ("", "---------"),
        ("acme", f"{demo_workspace} (acme)"),
    ]


def test_a_template_may_give_sample_payload_values(console, requester):
    # given: a template showing {{payload.name}}, with a sample for it
    template = ApprovalTemplateFactory(
        content="<p>{{payload.name}} for {{who}}</p>",
        sample_variables={"who": "Ops", "payload.name": "Sample Co"},
    )

    # when
    form = _form_page(
        console, template=template.pk, action_type="operations.create_tenant"
    ).context["form"]

    # then: payload.name is a payload field with the sample, not a variable
    assert form.variable_names == ["who"]
    assert form["payload__name"].value() == "Sample Co"


def test_a_handler_without_a_payload_serializer_gets_the_json_box(
    console, tenant_template, json_handler
):
    form = _form_page(console, template=tenant_template.pk, action_type=json_handler).context[
        "form"
    ]

    assert "payload" in form.fields
    assert not form.payload_names


def test_posting_the_fields_requests_exactly_one_approval_through_the_service(
    knox, console, tenant_template, demo_workspace, boss
):
    # when
    response = post_request_form(
        console, tenant_template, variable__tenant_name='<b>&"', approvers="EP-BOSS-1"
    )

    # then: one pending action, submitted to Knox, and the detail page
    action = PendingAction.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:approvals_pendingaction_change", args=[action.pk])
    assert action.status == ActionStatus.PENDING
    assert action.action_type == "operations.create_tenant"
    assert action.action_payload == {"workspace": "acme", "name": "Console"}
    document = knox.document(action.ap_inf_id)
    assert document["subject"] == "From the console"
    assert [a["epId"] for a in document["aplns"]] == ["EP-REQ-1", "EP-BOSS-1"]
    assert "<h2>New tenant &lt;b&gt;&amp;&quot;</h2>" in document["contents"]
    assert knox.calls() == {"submit": 1}


def test_the_json_box_still_works_for_a_handler_without_a_serializer(
    knox, console, tenant_template, json_handler
):
    response = post_request_form(
        console,
        tenant_template,
        shown_for=f"{tenant_template.pk}|{json_handler}",
        action_type=json_handler,
        payload='{"anything": [1, 2]}',
    )

    assert response.status_code == 302
    assert PendingAction.objects.get().action_payload == {"anything": [1, 2]}


def test_a_serializer_error_is_shown_on_its_payload_field_and_nothing_is_written(
    knox, console, tenant_template, demo_workspace
):
    # given: acme already has a tenant named Console
    TenantFactory(workspace=demo_workspace, name="Console")

    # when
    response = post_request_form(console, tenant_template)

    # then: the serializer's message on the name field
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["payload__name"] == ["This workspace already has a tenant with that name."]
    assert not PendingAction.objects.exists()
    assert not ApprovalLog.objects.exists()
    assert knox.calls() == {}


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("payload__workspace", "elsewhere", "Select a valid choice."),
        ("payload__name", "", "This field is required."),
        ("title", "", "This field is required."),
        ("template", "999999", "Select a valid choice."),
    ],
)
def test_a_bad_value_is_an_error_on_its_field_and_nothing_is_written(
    knox, console, tenant_template, demo_workspace, field, value, error
):
    # given: the page was shown for what is posted (a template no longer there, say)
    shown = {"shown_for": "999999|operations.create_tenant"} if field == "template" else {}

    # when
    response = post_request_form(console, tenant_template, **{field: value, **shown})

    # then
    assert response.status_code == 200
    assert any(error in message for message in response.context["form"].errors[field])
    assert not PendingAction.objects.exists()
    assert knox.calls() == {}


def test_what_only_the_service_checks_is_shown_on_its_field_and_nothing_is_written(
    knox, console, tenant_template, demo_workspace
):
    # given: an approver listed twice (only the service checks the approval line)
    response = post_request_form(console, tenant_template, approvers="EP-BOSS-1, EP-BOSS-1")

    assert response.status_code == 200
    assert response.context["form"].errors["approvers"] == ["An approver is listed twice."]
    assert not PendingAction.objects.exists()
    assert knox.calls() == {}


def test_a_requester_without_an_ep_id_is_told_so_and_nothing_is_written(
    knox, client, tenant_template, demo_workspace
):
    # given: staff who may see pending actions, an operator of acme, without an EP ID
    user = staff_with("approvals.view_pendingaction")
    MembershipFactory(workspace=demo_workspace, user=user, role=MemberRole.OPERATOR)
    client.force_login(user)

    # when
    response = post_request_form(client, tenant_template)

    # then: the service's refusal, on the form
    assert response.status_code == 200
    assert any("no Knox EP ID" in e for e in response.context["form"].non_field_errors())
    assert not PendingAction.objects.exists()
    assert knox.calls() == {}


def test_a_post_from_a_page_shown_for_another_choice_is_shown_again_not_requested(
    knox, console, tenant_template
):
    # given: the page was rendered before any choice (no variable fields posted)
    response = post_request_form(
        console,
        tenant_template,
        shown_for="|",
        variable__tenant_name=None,
        variable__workspace=None,
    )

    # then: the form comes back with the fields for the choice, samples filled
    assert response.status_code == 200
    form = response.context["form"]
    assert form["variable__tenant_name"].value() == "Example"
    assert form["title"].value() == "From the console"  # what was typed is kept
    assert not form.is_bound
    assert "Nothing was requested" in response.content.decode()
    assert not PendingAction.objects.exists()
    assert knox.calls() == {}


def test_the_named_approvers_are_shown_with_who_they_are(console, tenant_template, boss):
    response = _form_page(console, template=tenant_template.pk, approvers="EP-BOSS-1, EP-NOBODY")

    assert response.context["approvers_named"] == [
        (
            "EP-BOSS-1",
            {
                "ep_id": "EP-BOSS-1",
                "username": "bpark",
                "name": "Bo Park",
                "label": "Bo Park (bpark)",
            },
        ),
        ("EP-NOBODY", None),
    ]
    assert "<code>EP-BOSS-1</code>: Bo Park (bpark)" in response.content.decode()


def test_a_staff_user_who_may_not_see_pending_actions_gets_403(client, tenant_template):
    # given: staff, but without the view permission on pending actions
    client.force_login(staff_with("approvals.view_approvaltemplate"))

    # then: the form is refused, on GET and POST alike, and nothing is written
    assert client.get(reverse(REQUEST)).status_code == 403
    assert post_request_form(client, tenant_template).status_code == 403
    assert not PendingAction.objects.exists()


# --- the approver lookup ------------------------------------------------------------------


def test_the_lookup_finds_people_by_name_with_their_ep_ids(console, boss):
    # given: someone without an EP ID, who cannot be an approver
    UserFactory(username="bonnie", first_name="Bo", last_name="Nobody")

    answer = console.get(reverse(LOOKUP), {"q": "bo pa"})

    assert answer.status_code == 200
    assert answer.json() == {
        "results": [
            {
                "ep_id": "EP-BOSS-1",
                "username": "bpark",
                "name": "Bo Park",
                "label": "Bo Park (bpark)",
            }
        ]
    }
    assert console.get(reverse(LOOKUP), {"q": "EP-BOSS"}).json()["results"][0]["username"] == (
        "bpark"
    )
    assert console.get(reverse(LOOKUP), {"q": "  "}).json() == {"results": []}


def test_the_lookup_answers_someone_who_may_request_with_the_view_permission(client, boss):
    # given: staff with only the view permission, and an EP ID of their own
    user = staff_with("approvals.view_pendingaction")
    knox_profile_set(user=user, ep_id="EP-STAFF-1")
    client.force_login(user)

    answer = client.get(reverse(LOOKUP), {"q": "park"})

    assert answer.status_code == 200
    assert [p["ep_id"] for p in answer.json()["results"]] == ["EP-BOSS-1"]


@pytest.mark.parametrize(
    "permissions", [(), ("approvals.view_pendingaction",)], ids=["no view permission", "no EP ID"]
)
def test_the_lookup_leaks_no_ep_id_to_someone_who_may_not_request(client, boss, permissions):
    # given: staff who may not request approvals (no view permission, or no EP ID)
    client.force_login(staff_with(*permissions))

    answer = client.get(reverse(LOOKUP), {"q": "park"})

    assert answer.status_code == 403
    assert "EP-BOSS-1" not in answer.content.decode()
    assert "bpark" not in answer.content.decode()


def test_the_form_names_no_approver_to_someone_without_an_ep_id(client, tenant_template, boss):
    # given: staff who may see pending actions but has no EP ID
    client.force_login(staff_with("approvals.view_pendingaction"))

    response = _form_page(client, template=tenant_template.pk, approvers="EP-BOSS-1")

    page = response.content.decode()
    assert "Bo Park" not in page
    assert 'id="approver-search"' not in page
    assert "Only someone with a Knox EP ID may request approvals" in page


# --- the template preview is what Knox receives ---------------------------------------------


class TaggedPayload(serializers.Serializer):
    tags = serializers.ListField(child=serializers.CharField())
    label = serializers.CharField()


@pytest.fixture
def tagged_handler(db):
    register_action_handler(
        "test.tagged",
        lambda payload, **_: {},
        authorize=any_requester,
        payload_serializer=TaggedPayload,
    )
    yield "test.tagged"
    unregister_action_handler("test.tagged")


def _preview(client, template) -> str:
    """The preview on the template's admin page, as the browser renders it."""
    page = client.get(
        reverse("admin:approvals_approvaltemplate_change", args=[template.pk])
    ).content.decode()
    srcdoc = re.search(r'<iframe sandbox srcdoc="([^"]*)"', page).group(1)
    return html.unescape(srcdoc)


def test_the_template_preview_is_exactly_what_knox_receives(
    knox, console, requester, tagged_handler
):
    # given: a template whose samples hold HTML special characters and a list
    template = ApprovalTemplateFactory(
        name="Tagged",
        content="<h2>{{title}}</h2><p>{{payload.label}}: {{payload.tags}}</p>",
        sample_variables={
            "title": '<b>&"',
            "payload.label": "x < y & z",
            "payload.tags": ["a", "<i>b</i>"],
        },
    )

    # when: an approval is requested with those very values
    action = approval_request(
        action_type=tagged_handler,
        payload={"label": "x < y & z", "tags": ["a", "<i>b</i>"]},
        title="Tagged",
        template_name=template.name,
        variables={"title": '<b>&"'},
        approvers=["EP-BOSS-1"],
        user=requester,
    )
    received = knox.document(action.ap_inf_id)["contents"]

    # then: Knox got the summary of what runs, then exactly the preview
    preview = _preview(console, template)
    summary, rest = received.split("</div>", 1)
    assert summary.startswith('<div class="bureau-action">')
    assert rest == preview
    assert "<h2>&lt;b&gt;&amp;&quot;</h2>" in preview
    assert "[&quot;a&quot;, &quot;&lt;i&gt;b&lt;/i&gt;&quot;]" in preview


def test_the_show_fields_button_shows_the_fields_for_the_choice_without_requesting(
    knox, console, tenant_template
):
    # given: a page shown before any choice, posted with "Show the fields" (no JavaScript)
    response = console.post(
        reverse(REQUEST),
        {
            "shown_for": "|",
            "template": tenant_template.pk,
            "action_type": "operations.create_tenant",
            "title": "Kept",
            "_refresh": "Show the fields for my choice",
        },
    )

    # then: the fields for the choice, what was typed kept, nothing requested
    form = response.context["form"]
    assert response.status_code == 200
    assert form["variable__workspace"].value() == "acme"
    assert form.payload_names == ["workspace", "name"]
    assert form["title"].value() == "Kept"
    assert form["shown_for"].value() == f"{tenant_template.pk}|operations.create_tenant"
    assert "Nothing was requested" not in response.content.decode()
    assert not PendingAction.objects.exists()


class EveryKindPayload(serializers.Serializer):
    count = serializers.IntegerField(min_value=1)
    ratio = serializers.DecimalField(max_digits=5, decimal_places=2, required=False)
    urgent = serializers.BooleanField(default=False)
    colour = serializers.ChoiceField(choices=[("red", "Red"), ("blue", "Blue")])
    due = serializers.DateField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    note = serializers.CharField(required=False, allow_blank=True)
    created = serializers.DateTimeField(read_only=True)


@pytest.fixture
def every_kind_handler(db):
    register_action_handler(
        "test.every_kind",
        lambda payload, **_: {},
        authorize=any_requester,
        payload_serializer=EveryKindPayload,
    )
    yield "test.every_kind"
    unregister_action_handler("test.every_kind")


def test_each_kind_of_serializer_field_gets_a_form_field_of_its_kind(
    knox, console, tenant_template, every_kind_handler
):
    # when
    form = _form_page(console, template=tenant_template.pk, action_type=every_kind_handler).context[
        "form"
    ]

    # then: typed fields; a read-only field is not asked for
    kinds = {name: type(form.fields[f"payload__{name}"]) for name in form.payload_names}
    assert kinds == {
        "count": forms.IntegerField,
        "ratio": forms.DecimalField,
        "urgent": forms.BooleanField,
        "colour": forms.ChoiceField,
        "due": forms.DateField,
        "tags": forms.JSONField,
        "note": forms.CharField,
    }
    assert form.fields["payload__count"].min_value == 1
    assert form["payload__urgent"].value() is False


def test_typed_payload_fields_reach_the_service_as_json(
    knox, console, tenant_template, every_kind_handler
):
    # when: posted with numbers, a date, a list; the optional note left blank
    response = post_request_form(
        console,
        tenant_template,
        shown_for=f"{tenant_template.pk}|{every_kind_handler}",
        action_type=every_kind_handler,
        payload__count="3",
        payload__ratio="1.50",
        payload__urgent="on",
        payload__colour="blue",
        payload__due="2026-12-01",
        payload__tags='["a", "b"]',
        payload__note="",
    )

    # then: the payload as the serializer validated it (blank optional fields left out)
    assert response.status_code == 302, response.context["form"].errors
    assert PendingAction.objects.get().action_payload == {
        "count": 3,
        "ratio": "1.50",
        "urgent": True,
        "colour": "blue",
        "due": "2026-12-01",
        "tags": ["a", "b"],
    }


def test_a_number_below_the_minimum_is_an_error_on_its_field(
    knox, console, tenant_template, every_kind_handler
):
    # when: a count below the serializer's minimum
    response = post_request_form(
        console,
        tenant_template,
        shown_for=f"{tenant_template.pk}|{every_kind_handler}",
        action_type=every_kind_handler,
        payload__count="0",
        payload__colour="red",
    )

    assert response.status_code == 200
    assert response.context["form"].errors["payload__count"]
    assert not PendingAction.objects.exists()
