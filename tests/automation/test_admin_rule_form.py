"""The rule form that guides (issue 12, item 4): each action's config edited
with fields for its type (the JSON box as the fallback), validation messages
on the field they are about, the condition builder's rows, and a new action
numbered after the others. Saved by rule_save, as the API's rules are."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from approvals.models import ApprovalTemplate
from automation.admin.action_config import (
    CONFIG_FIELDS,
    config_from_fields,
    initial_from_config,
    route_messages,
)
from automation.conditions import OPERATORS
from automation.models import AutomationRule
from tests.automation.factories import (
    GroupFactory,
    admin_rule_form,
    alert_action,
    make_rule,
    update_field_action,
)

pytestmark = pytest.mark.django_db

ADD = "admin:automation_automationrule_add"


def typed_form(action_type: str, fields: dict[str, object], **overrides) -> dict:
    """The rule form with one action edited through its typed fields (the
    JSON box sent empty, as a browser sends it) and conditions from the builder."""
    data = admin_rule_form(
        **{
            "trigger_conditions": "",
            "trigger_conditions__mode": "builder",
            "trigger_conditions__0__field": "name",
            "trigger_conditions__0__operator": "changed_to",
            "trigger_conditions__0__value": "Acme",
            "actions-0-action_type": action_type,
            "actions-0-config_mode": "fields",
            "actions-0-action_config": "",
            **{f"actions-0-{action_type}__{key}": value for key, value in fields.items()},
        }
    )
    data.update(overrides)
    return data


def _errors(response) -> dict:
    """The first action form's errors, as the page shows them beside each field."""
    formset = next(
        f for f in response.context["inline_admin_formsets"] if f.formset.prefix == "actions"
    )
    return formset.formset.forms[0].errors


def test_a_create_alert_action_and_its_condition_are_saved_from_the_typed_fields(
    admin_client, tenant_entity
):
    # given: a role, and the form filled with fields, not JSON
    oncall = GroupFactory(name="on-call")
    form = typed_form(
        "create_alert",
        {
            "alert_type": "tenant_renamed",
            "severity": "high",
            "title": "Tenant {{name}} renamed",
            "message": "Was {{old.name}}.",
            "recipients__users": "root",
            "recipients__roles": [str(oncall.pk)],
        },
    )

    # when
    response = admin_client.post(reverse(ADD), form)

    # then: the same rule as the API would save from JSON
    assert response.status_code == 302, _errors(response)
    rule = AutomationRule.objects.get()
    assert rule.trigger_conditions == {
        "field_conditions": [{"field_name": "name", "operator": "changed_to", "value": "Acme"}]
    }
    assert rule.actions.get().action_config == {
        "alert_type": "tenant_renamed",
        "severity": "high",
        "title": "Tenant {{name}} renamed",
        "message": "Was {{old.name}}.",
        "recipients": {"users": ["root"], "roles": ["on-call"]},
    }


@pytest.mark.parametrize(
    ("action_type", "fields", "config"),
    [
        (
            "send_notification",
            {
                "channels": ["email", "in_app"],
                "recipients__users": "root",
                "subject": "Renamed",
                "message": "{{name}}",
                "max_attempts": "3",
            },
            {
                "channels": ["email", "in_app"],
                "recipients": {"users": ["root"]},
                "subject": "Renamed",
                "message": "{{name}}",
                "max_attempts": 3,
            },
        ),
        ("update_field", {"field": "name", "value": "{{name}} (checked)"}, None),
        (
            "seek_approval",
            {
                "action_type": "operations.create_tenant",
                "title": "Twin of {{name}}",
                "template_name": "New tenant",
                "approvers": "EP-1, EP-2",
                "payload": '{"workspace": "acme", "name": "{{name}} (EU)"}',
            },
            {
                "action_type": "operations.create_tenant",
                "title": "Twin of {{name}}",
                "template_name": "New tenant",
                "approvers": ["EP-1", "EP-2"],
                "payload": {"workspace": "acme", "name": "{{name}} (EU)"},
            },
        ),
    ],
)
def test_every_action_type_is_saved_from_its_typed_fields(
    admin_client, tenant_entity, action_type, fields, config
):
    # given
    ApprovalTemplate.objects.create(name="New tenant", content="<p>x</p>", default_approvers=[])

    # when
    response = admin_client.post(reverse(ADD), typed_form(action_type, fields))

    # then
    assert response.status_code == 302, _errors(response)
    expected = config or {"field": "name", "value": "{{name}} (checked)"}
    assert AutomationRule.objects.get().actions.get().action_config == expected


def test_a_validation_error_appears_on_the_typed_field_it_is_about(admin_client, tenant_entity):
    # given: no alert type, a user who does not exist
    form = typed_form("create_alert", {"title": "t", "message": "m", "recipients__users": "ghost"})

    # when
    response = admin_client.post(reverse(ADD), form)

    # then: each message beside its field, nothing saved
    assert response.status_code == 200
    errors = _errors(response)
    assert errors["create_alert__alert_type"] == ["create_alert: alert_type is required (text)."]
    assert errors["create_alert__recipients__users"] == [
        "create_alert: recipients.users: no such user(s): ghost."
    ]
    assert "action_config" not in errors
    page = response.content.decode()
    assert "no such user(s): ghost" in page
    assert 'value="ghost"' in page  # the form comes back as it was filled
    assert not AutomationRule.objects.exists()


def test_an_update_field_action_offers_the_entitys_writable_fields(admin_client, tenant_entity):
    # given: a rule on tenants (operations lets rules write a tenant's name only)
    rule = make_rule(actions=[update_field_action("name", "x")])

    # when
    page = admin_client.get(reverse("admin:automation_automationrule_change", args=[rule.pk]))

    # then
    form = next(
        f for f in page.context["inline_admin_formsets"] if f.formset.prefix == "actions"
    ).formset.forms[0]
    assert [value for value, _label in form.fields["update_field__field"].choices] == ["", "name"]
    assert form["update_field__field"].value() == "name"


def test_the_json_box_wins_when_it_is_chosen(admin_client, tenant_entity):
    # given: typed fields filled, but the JSON box chosen
    config = {
        "alert_type": "from_json",
        "title": "t",
        "message": "m",
        "recipients": {"users": ["root"]},
    }
    form = typed_form(
        "create_alert",
        {"alert_type": "from_fields", "title": "x", "message": "y", "recipients__users": "root"},
        **{"actions-0-config_mode": "json", "actions-0-action_config": json.dumps(config)},
    )

    # when
    response = admin_client.post(reverse(ADD), form)

    # then
    assert response.status_code == 302, _errors(response)
    assert AutomationRule.objects.get().actions.get().action_config == config


def test_an_existing_action_opens_in_its_typed_fields(admin_client, tenant_entity, root):
    # given
    rule = make_rule(actions=[alert_action(recipients={"users": ["root"]})])

    # when
    page = admin_client.get(reverse("admin:automation_automationrule_change", args=[rule.pk]))

    # then
    text = page.content.decode()
    assert (
        'name="actions-0-config_mode" value="fields" class="config-mode" id="id_actions-0-config_mode_0" checked'
        in text
    )
    assert 'name="actions-0-create_alert__title" value="Tenant {{name}} changed"' in text
    assert 'name="actions-0-create_alert__recipients__users" value="root"' in text


def test_a_config_the_fields_cannot_show_opens_as_json(admin_client, tenant_entity):
    # given: a severity filled from the row, which the severity choice cannot show
    rule = make_rule(actions=[alert_action(severity="{{name}}")])

    # when
    page = admin_client.get(reverse("admin:automation_automationrule_change", args=[rule.pk]))

    # then
    assert 'value="json" class="config-mode" id="id_actions-0-config_mode_1" checked' in (
        page.content.decode()
    )


def test_an_edit_sent_as_json_only_still_saves_as_before(admin_client, tenant_entity):
    # given: a client that knows only the JSON box (no config_mode, no typed fields)
    rule = make_rule(actions=[alert_action(recipients={"users": ["root"]})])
    action = rule.actions.get()
    config = {**action.action_config, "title": "Changed"}
    form = admin_rule_form(
        **{
            "name": rule.name,
            "actions-INITIAL_FORMS": "1",
            "actions-0-id": str(action.pk),
            "actions-0-rule": str(rule.pk),
            "actions-0-name": action.name,
            "actions-0-action_config": json.dumps(config),
        }
    )

    # when
    response = admin_client.post(
        reverse("admin:automation_automationrule_change", args=[rule.pk]), form
    )

    # then
    assert response.status_code == 302, _errors(response)
    assert rule.actions.get().action_config["title"] == "Changed"


def test_a_new_action_is_numbered_after_the_others(admin_client, tenant_entity):
    # given: actions 1 and 3
    rule = make_rule(actions=[alert_action(order=1), alert_action(order=3)])

    # when
    page = admin_client.get(reverse("admin:automation_automationrule_change", args=[rule.pk]))

    # then: the form an operator adds starts at 4
    assert 'name="actions-__prefix__-execution_order" value="4"' in page.content.decode()


def test_a_new_rules_first_action_is_number_one(admin_client, tenant_entity):
    page = admin_client.get(reverse(ADD))

    assert 'name="actions-__prefix__-execution_order" value="1"' in page.content.decode()


def test_the_condition_builder_offers_the_entitys_fields_and_every_operator(
    admin_client, tenant_entity
):
    # given
    rule = make_rule(conditions=[{"field_name": "name", "operator": "in", "value": ["A", "B"]}])

    # when
    page = admin_client.get(reverse("admin:automation_automationrule_change", args=[rule.pk]))
    text = page.content.decode()

    # then: the stored condition as a row, the tenant's fields and all operators to choose
    assert '<option value="name" selected>name</option>' in text
    assert '<option value="workspace">workspace</option>' in text
    assert '<option value="in" selected>in</option>' in text
    for operator in OPERATORS:
        assert f'<option value="{operator}"' in text
    assert 'name="trigger_conditions__0__value" value="A, B"' in text
    assert 'name="trigger_conditions__mode" value="builder" checked' in text


def test_builder_rows_become_conditions_in_and_is_null_included(admin_client, tenant_entity):
    # given: an "in" row with a list, an is_null row with a stray value, an empty row
    form = typed_form(
        "create_alert",
        {"alert_type": "a", "title": "t", "message": "m", "recipients__users": "root"},
        **{
            "trigger_conditions__0__operator": "in",
            "trigger_conditions__0__value": "Acme, Globex",
            "trigger_conditions__1__field": "external_id",
            "trigger_conditions__1__operator": "is_not_null",
            "trigger_conditions__1__value": "ignored",
            "trigger_conditions__2__field": "",
            "trigger_conditions__2__operator": "",
            "trigger_conditions__2__value": "",
        },
    )

    # when
    response = admin_client.post(reverse(ADD), form)

    # then
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert AutomationRule.objects.get().trigger_conditions == {
        "field_conditions": [
            {"field_name": "name", "operator": "in", "value": ["Acme", "Globex"]},
            {"field_name": "external_id", "operator": "is_not_null"},
        ]
    }


def test_a_bad_builder_row_is_refused_with_its_number(admin_client, tenant_entity):
    form = typed_form(
        "create_alert",
        {"alert_type": "a", "title": "t", "message": "m", "recipients__users": "root"},
        **{"trigger_conditions__0__field": "nope"},
    )

    response = admin_client.post(reverse(ADD), form)

    assert response.status_code == 200
    assert "Condition 1: unknown field" in " ".join(
        response.context["adminform"].form.errors["trigger_conditions"]
    )
    assert not AutomationRule.objects.exists()


# --- the declarations themselves ---------------------------------------------------------


def test_every_registered_action_type_has_a_declaration():
    from automation.actions import action_registry

    assert sorted(CONFIG_FIELDS) == action_registry.keys()


def test_a_config_goes_to_fields_and_back_unchanged(db):
    ops = GroupFactory(name="ops")
    config = {
        "alert_type": "a",
        "severity": "low",
        "title": "t",
        "message": "m",
        "recipients": {"users": ["root", 7], "roles": ["ops"]},
        "resolve_prior": True,
        "expires_in_minutes": 30,
        "context": {"k": 1},
    }

    initial = initial_from_config("create_alert", config)
    # the roles field gives back groups where it was given their ids
    assert initial["create_alert__recipients__roles"] == [ops.pk]
    cleaned = {**initial, "create_alert__recipients__roles": [ops]}

    assert config_from_fields("create_alert", cleaned) == {
        **config,
        "recipients": {"users": ["root", "7"], "roles": ["ops"]},
    }


def test_an_unknown_key_is_not_shown_in_fields():
    assert initial_from_config("update_field", {"field": "name", "value": "x", "extra": 1}) is None


def test_messages_go_to_the_most_specific_field():
    by_field, unplaced = route_messages(
        "create_alert",
        [
            "create_alert: recipients.roles: no such role(s): x.",
            "create_alert: recipients needs at least one user or role.",
            "unknown placeholder(s) {{nme}}.",
            "something else entirely",
        ],
        {"create_alert__title": "Hello {{nme}}"},
    )

    assert by_field == {
        "create_alert__recipients__roles": ["create_alert: recipients.roles: no such role(s): x."],
        "create_alert__recipients__users": [
            "create_alert: recipients needs at least one user or role."
        ],
        "create_alert__title": ["unknown placeholder(s) {{nme}}."],
    }
    assert unplaced == ["something else entirely"]
