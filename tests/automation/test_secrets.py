"""Secret-looking columns (a password hash, a token hash…) never reach event
snapshots, conditions, placeholders or update_field."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from automation.actions.fields import resolve_target
from automation.entities import entities_sync, field_names, snapshot
from automation.models import AutomationEvent
from automation.validation import condition_errors
from tests.automation.factories import make_rule
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def user_entity(settings, entities):
    """auth.User watched as an extra entity, as AUTOMATION_ENTITIES at startup would."""
    from django.db.models.signals import post_delete, post_save, pre_save

    from automation.events import connect_signals

    settings.AUTOMATION_ENTITIES = ("auth.User",)
    entities_sync()
    user_model = get_user_model()
    connect_signals([user_model])
    yield
    uid = f"automation:{user_model._meta.label}"
    pre_save.disconnect(sender=user_model, dispatch_uid=f"{uid}:pre_save")
    post_save.disconnect(sender=user_model, dispatch_uid=f"{uid}:post_save")
    post_delete.disconnect(sender=user_model, dispatch_uid=f"{uid}:post_delete")


def test_an_event_for_a_user_carries_no_password_hash(
    user_entity, django_capture_on_commit_callbacks
):
    # given: a rule watching user updates
    make_rule(name="users", entity="auth.User")
    user = UserFactory(username="alice")
    user.set_password("correct horse battery staple")

    # when: the user is saved
    with django_capture_on_commit_callbacks(execute=True):
        user.save()

    # then: the event has the user's columns but not the password hash
    event = AutomationEvent.objects.get(trigger="on_update", object_pk=str(user.pk))
    assert event.new_values["username"] == "alice"
    assert "password" not in event.new_values
    assert "password" not in (event.old_values or {})
    assert "pbkdf2" not in str(event.new_values) + str(event.old_values)


def test_secret_columns_are_left_out_of_snapshots_conditions_and_update_field():
    user_model = get_user_model()
    assert "password" not in snapshot(user_model(username="x", password="hash"))
    assert "password" not in field_names(user_model)
    problems = condition_errors(
        {"field_conditions": [{"field_name": "password", "operator": "is_null"}]},
        model=user_model,
        trigger="on_update",
    )
    assert any("unknown field 'password'" in p for p in problems)
    token_models = [
        m for m in apps.get_models() if any(f.name == "token_hash" for f in m._meta.fields)
    ]
    assert token_models, "a model with a token_hash column exists in Bureau"
    for model in token_models:
        assert "token_hash" not in field_names(model)
    with pytest.raises(ValidationError, match="holds a secret"):
        resolve_target(user_model, "password")
