"""The migration that starts keeping rule versions keeps each existing rule's
current definition as its first version."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("automation", "0005_created_at_updated_at")]
AFTER = [("automation", "0006_rule_versions")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def back_to_latest():
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_existing_rules_get_their_current_definition_as_a_version(back_to_latest):
    # given: a rule at version 4 with a webhook action, saved before versions were kept
    old = _migrate(BEFORE)
    user = old.get_model("auth", "User").objects.create(username="author")
    entity_type, _ = old.get_model("automation", "EntityType").objects.get_or_create(name="table")
    entity, _ = old.get_model("automation", "Entity").objects.get_or_create(
        name="operations_tenant",
        defaults={"model_label": "operations.Tenant", "entity_type": entity_type},
    )
    trigger, _ = old.get_model("automation", "TriggerType").objects.get_or_create(name="on_update")
    rule = old.get_model("automation", "AutomationRule").objects.create(
        name="old rule",
        entity=entity,
        entity_type=entity_type,
        trigger_type=trigger,
        trigger_conditions={"field_conditions": []},
        version=4,
        created_by=user,
        updated_by=user,
    )
    old.get_model("automation", "RuleAction").objects.create(
        rule=rule,
        name="hook",
        action_type="send_notification",
        action_config={"channels": ["webhook"], "webhook_url": "https://u:pw@h.example/x"},
        execution_order=1,
    )

    # when
    new = _migrate(AFTER)

    # then
    (version,) = new.get_model("automation", "RuleVersion").objects.all()
    assert (version.rule_id, version.version, version.saved_by_id) == (rule.pk, 4, user.pk)
    assert version.definition["name"] == "old rule"
    assert version.definition["entity"] == "operations_tenant"
    (action,) = version.definition["actions"]
    assert action["action_type"] == "send_notification"
    assert "pw" not in action["action_config"]["webhook_url"]
