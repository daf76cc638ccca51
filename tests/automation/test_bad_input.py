"""Input that is wrong in shape or range is a 400 naming what is wrong and
writes nothing (never a 500); update_field cannot reach another app's
state-machine fields."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from automation.actions.fields import resolve_target
from automation.entities import entities_sync
from automation.models import AutomationEvent, AutomationRule, RuleAction, RuleDependency
from automation.services import rule_save
from tests.automation.factories import make_rule
from tests.operations.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

RULES = "/api/v1/automation/rules/"


@pytest.fixture
def admin_api(db):
    client = APIClient()
    client.force_authenticate(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def user_entity(settings, entities):
    """auth.User as an extra entity: a model outside the allowlist, with an
    editable DateTimeField (last_login)."""
    settings.AUTOMATION_ENTITIES = ("auth.User",)
    entities_sync()


def _counts():
    return (
        AutomationRule.objects.count(),
        RuleAction.objects.count(),
        RuleDependency.objects.count(),
        AutomationEvent.objects.count(),
    )


def _body(*, entity="operations_tenant", trigger="on_update", conditions=None, action=None, **kw):
    body = {
        "name": "bad",
        "entity": entity,
        "trigger_type": trigger,
        "trigger_conditions": {"field_conditions": conditions or []},
        "actions": [action] if action else [],
    }
    return {**body, **kw}


def _alert(**config):
    return {
        "action_type": "create_alert",
        "execution_order": 1,
        "action_config": {
            "alert_type": "a",
            "title": "t",
            "message": "m",
            "recipients": {"users": [UserFactory().pk]},
            **config,
        },
    }


def _notify(**config):
    return {
        "action_type": "send_notification",
        "execution_order": 1,
        "action_config": {
            "channels": ["in_app"],
            "recipients": {"users": [UserFactory().pk]},
            "message": "m",
            **config,
        },
    }


def _update(field, value, order=1):
    return {
        "action_type": "update_field",
        "execution_order": order,
        "action_config": {"field": field, "value": value},
    }


CASES = {
    "field_name is a list": lambda: _body(
        conditions=[{"field_name": ["name"], "operator": "equals", "value": "x"}]
    ),
    "operator is an object": lambda: _body(
        conditions=[{"field_name": "name", "operator": {"a": 1}, "value": "x"}]
    ),
    "recipient is a superscript digit": lambda: _body(action=_alert(recipients={"users": ["²"]})),
    "recipient id is 10**30": lambda: _body(action=_alert(recipients={"users": [10**30]})),
    "role id is 10**30 text": lambda: _body(action=_alert(recipients={"roles": [str(10**30)]})),
    "recipient is 5000 digits": lambda: _body(action=_alert(recipients={"users": ["9" * 5000]})),
    "channel is a list": lambda: _body(action=_notify(channels=[["email"]])),
    "execution_order is 10**20": lambda: _body(action={**_alert(), "execution_order": 10**20}),
    "max_attempts is 10**20": lambda: _body(action=_notify(max_attempts=10**20)),
    "max_attempts is true": lambda: _body(action=_notify(max_attempts=True)),
    "expires_in_minutes is 10**20": lambda: _body(action=_alert(expires_in_minutes=10**20)),
    "expires_in_minutes is true": lambda: _body(action=_alert(expires_in_minutes=True)),
    "update_field list for a DateTimeField": lambda: _body(
        entity="auth_user", action=_update("last_login", [1])
    ),
    "update_field object for a DateTimeField": lambda: _body(
        entity="auth_user", action=_update("last_login", {"a": 1})
    ),
    "cron that never fires": lambda: _body(trigger="scheduled", cron_expression="0 0 30 2 *"),
    "update_field on ScanJob.status": lambda: _body(
        entity="scanning_scanjob", action=_update("status", "committed")
    ),
    "update_field on a related Workspace.slug": lambda: _body(
        action=_update("workspace.slug", "x")
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_rule_input_is_a_400_and_writes_nothing(admin_api, user_entity, case):
    # given: a valid rule to update as well as create
    rule = make_rule(name="existing")
    body = CASES[case]()
    before = _counts()
    version = rule.version

    # when: the bad input is posted (create) and put (replace)
    created = admin_api.post(RULES, body, format="json")
    replaced = admin_api.put(f"{RULES}{rule.pk}/", body, format="json")

    # then: both are 400 with a field error, and nothing changed
    assert created.status_code == 400, (created.status_code, created.data)
    assert replaced.status_code == 400, (replaced.status_code, replaced.data)
    assert _counts() == before
    rule.refresh_from_db()
    assert rule.version == version


@pytest.mark.parametrize(
    "changes",
    [{"created_at": [1]}, {"created_at": {"a": 1}}, {"workspace_id": [1]}],
)
def test_dry_run_with_changes_of_the_wrong_type_is_a_400(admin_api, tenant_entity, changes):
    rule = make_rule(name="dry")
    tenant = TenantFactory()
    before = _counts()

    response = admin_api.post(
        f"{RULES}{rule.pk}/dry-run/",
        {"entity": "operations_tenant", "id": str(tenant.pk), "changes": changes},
        format="json",
    )

    assert response.status_code == 400, response.data
    assert "changes" in str(response.data)
    assert _counts() == before


@pytest.mark.parametrize(
    ("model_label", "path", "named"),
    [
        ("scanning.ScanJob", "status", "scanning.ScanJob.status"),
        ("approvals.PendingAction", "status", "approvals.PendingAction.status"),
        ("operations.Tenant", "workspace.slug", "operations.Workspace.slug"),
    ],
)
def test_update_field_refuses_fields_outside_the_allowlist(model_label, path, named):
    from django.apps import apps

    model = apps.get_model(model_label)
    with pytest.raises(ValidationError) as refused:
        resolve_target(model, path)
    message = " ".join(refused.value.messages)
    assert named in message
    assert "owning app" in message


def test_update_field_allows_listed_fields_and_any_field_of_unlisted_models():
    from django.apps import apps

    tenant = apps.get_model("operations.Tenant")
    assert resolve_target(tenant, "name")[1].name == "name"
    assert resolve_target(tenant, "workspace.name")[1].name == "name"
    user = apps.get_model("auth.User")
    assert resolve_target(user, "last_login")[1].name == "last_login"


@pytest.mark.parametrize("method", ["patch", "put", "post"])
def test_multipart_trigger_conditions_null_is_a_400_with_a_field_error(
    admin_api, tenant_entity, method
):
    # given: a rule, and a form body whose trigger_conditions is the JSON text "null"
    rule = make_rule(
        name="existing", conditions=[{"field_name": "name", "operator": "is_not_null"}]
    )
    before = _counts()
    form = {"trigger_conditions": "null"}
    if method != "patch":
        form.update(name="bad", entity="operations_tenant", trigger_type="on_update")
    url = RULES if method == "post" else f"{RULES}{rule.pk}/"

    # when: it is sent as multipart (as an HTML form or curl -F would)
    response = getattr(admin_api, method)(url, form, format="multipart")

    # then: a 400 naming the field, nothing written
    assert response.status_code == 400, (response.status_code, response.data)
    assert "trigger_conditions" in response.data
    assert "null" in " ".join(map(str, response.data["trigger_conditions"]))
    assert _counts() == before
    rule.refresh_from_db()
    assert rule.trigger_conditions == {
        "field_conditions": [{"field_name": "name", "operator": "is_not_null"}]
    }


def test_the_service_refuses_null_conditions_for_any_caller(tenant_entity):
    # given: a rule changed by a caller other than the API
    rule = make_rule(name="existing")

    # when / then: null conditions are a field error, not an IntegrityError
    with pytest.raises(ValidationError) as refused:
        rule_save(rule=rule, actor=rule.created_by, trigger_conditions=None)
    assert "trigger_conditions" in refused.value.message_dict


def test_a_bare_condition_is_refused_naming_the_expected_shape(admin_api, tenant_entity):
    # given: the shape the README used to show, a condition without its list
    bare = {"field_name": "name", "operator": "changed_to", "value": "Acme Holdings"}

    # when
    response = admin_api.post(
        RULES,
        _body(conditions=None, trigger_conditions=bare),
        format="json",
    )

    # then: the error shows the shape that works
    assert response.status_code == 400
    message = " ".join(response.data["trigger_conditions"])
    assert '{"field_conditions": [{"field_name": ' in message
    assert "field_name, operator, value" in message
    assert not AutomationRule.objects.filter(name="bad").exists()
