"""Replaying an event: refused (one line, nothing repeated) when the rule was
edited since the execution ran; any expected error is a one-line
CommandError or an admin message, never a traceback."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from automation.choices import Trigger
from automation.models import (
    Alert,
    AutomationEvent,
    AutomationExecution,
    Entity,
    EntityType,
    IdempotencyRecord,
)
from automation.services import rule_save
from tests.automation.factories import alert_action, make_rule, update_field_action
from tests.operations.factories import TenantFactory

pytestmark = pytest.mark.django_db


def _partial_execution_then_edit(django_capture_on_commit_callbacks):
    """A partial execution (the alert made, the slug taken), the cause fixed,
    then the rule edited: its actions are recreated and its version goes up."""
    rule = make_rule(
        name="two steps",
        actions=[alert_action(order=1), update_field_action("workspace.slug", "{{name}}", order=2)],
    )
    TenantFactory(workspace__slug="taken")
    tenant = TenantFactory()
    with django_capture_on_commit_callbacks(execute=True):
        tenant.name = "taken"
        tenant.save()
    execution = AutomationExecution.objects.get(rule=rule)
    assert execution.status == "partial" and Alert.objects.count() == 1
    tenant.workspace.__class__.objects.filter(slug="taken").update(slug="was-taken")
    rule_save(
        rule=rule,
        actor=rule.created_by,
        actions=[alert_action(order=1), update_field_action("workspace.slug", "{{name}}", order=2)],
    )
    event = AutomationEvent.objects.get(trigger="on_update", object_pk=str(tenant.pk))
    return event, execution


def test_replay_after_a_rule_edit_is_refused_in_one_line_and_repeats_nothing(
    tenant_entity, workspace_slug_writable, django_capture_on_commit_callbacks
):
    event, execution = _partial_execution_then_edit(django_capture_on_commit_callbacks)

    with pytest.raises(CommandError) as refused:
        call_command("automation_replay_event", str(event.pk), verbosity=0)

    assert "now at version 2" in str(refused.value)
    assert "\n" not in str(refused.value)
    execution.refresh_from_db()
    assert (execution.status, execution.rule_version) == ("partial", 1)
    assert Alert.objects.count() == 1  # the alert was not made again
    assert IdempotencyRecord.objects.count() == 1


def test_the_admin_replay_action_reports_a_rule_edit_as_a_message(
    admin_client, tenant_entity, workspace_slug_writable, django_capture_on_commit_callbacks
):
    event, execution = _partial_execution_then_edit(django_capture_on_commit_callbacks)

    response = admin_client.post(
        reverse("admin:automation_automationevent_changelist"),
        {"action": "replay", "_selected_action": [event.pk]},
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("now at version 2" in m for m in shown), shown
    assert Alert.objects.count() == 1
    execution.refresh_from_db()
    assert execution.status == "partial"


def test_the_admin_replay_reports_what_it_did_in_words(admin_client, tenant_entity, settings):
    # given: an event that failed after its last attempt, for a rule that makes an alert
    settings.AUTOMATION_EVENT_MAX_ATTEMPTS = 1
    make_rule(name="any", actions=[alert_action()])
    tenant = TenantFactory()
    tenant.name = "renamed"
    tenant.save()
    event = AutomationEvent.objects.get()
    AutomationEvent.objects.filter(pk=event.pk).update(status="failed", attempts=1)

    # when: replayed from its list
    response = admin_client.post(
        reverse("admin:automation_automationevent_changelist"),
        {"action": "replay", "_selected_action": [event.pk]},
        follow=True,
    )

    # then: the counts in words, not a Python dict
    shown = [str(m) for m in response.context["messages"]]
    assert len(shown) == 1, shown
    assert shown[0].startswith(f"Event {event.pk} replayed: "), shown
    assert "executions 1" in shown[0], shown
    assert not any(c in shown[0] for c in "{}'[]"), shown


@pytest.fixture
def orphan_event(entities):
    """An event whose entity's model is gone (its app was removed)."""
    entity = Entity.objects.create(
        name="gone_thing", model_label="gone.Thing", entity_type=EntityType.objects.first()
    )
    return AutomationEvent.objects.create(
        entity=entity, trigger=Trigger.ON_CREATE, object_pk="1", new_values={"id": 1}
    )


def test_replaying_an_event_whose_model_is_gone_is_one_line(orphan_event):
    with pytest.raises(CommandError) as refused:
        call_command("automation_replay_event", str(orphan_event.pk), verbosity=0)

    assert "the app 'gone' is not installed" in str(refused.value)
    orphan_event.refresh_from_db()
    assert orphan_event.status == "pending"


def test_the_admin_replay_of_an_event_whose_model_is_gone_is_a_message(admin_client, orphan_event):
    response = admin_client.post(
        reverse("admin:automation_automationevent_changelist"),
        {"action": "replay", "_selected_action": [orphan_event.pk]},
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("cannot be replayed" in m for m in shown), shown


def test_replaying_a_missing_event_is_one_line(db):
    with pytest.raises(CommandError, match="Event 999999 does not exist"):
        call_command("automation_replay_event", "999999", verbosity=0)
