"""Rule dependencies: parents first, a child skipped when a parent failed,
cycles refused when saved with the cycle's path."""

import pytest
from django.core.exceptions import ValidationError

from automation.engine import outbox_process
from automation.models import AutomationExecution, RuleDependency
from automation.services import rule_save
from tests.automation.factories import alert_action, make_rule, update_field_action
from tests.operations.factories import TenantFactory

pytestmark = pytest.mark.django_db


def _rename(name="x"):
    tenant = TenantFactory()
    tenant.name = name
    tenant.save()
    outbox_process()
    return tenant


def test_parents_run_before_their_children_whatever_the_ids(tenant_entity):
    # given: rules created child-first, so id order is the wrong order
    grandchild = make_rule(name="grandchild", actions=[alert_action()])
    child = make_rule(name="child", actions=[alert_action()])
    parent = make_rule(name="parent", actions=[alert_action()])
    rule_save(rule=child, actor=child.created_by, depends_on=[parent])
    rule_save(rule=grandchild, actor=grandchild.created_by, depends_on=[child])

    _rename()

    order = list(AutomationExecution.objects.order_by("id").values_list("rule__name", flat=True))
    assert order == ["parent", "child", "grandchild"]
    assert set(AutomationExecution.objects.values_list("status", flat=True)) == {"success"}


def test_a_child_is_skipped_when_its_parent_failed(tenant_entity, workspace_slug_writable):
    parent = make_rule(name="parent", actions=[update_field_action("workspace.slug", "{{name}}")])
    child = make_rule(name="child", actions=[alert_action()], depends_on=[parent])
    unrelated = make_rule(name="unrelated", actions=[alert_action()])

    _rename("not a valid slug")

    status = {e.rule.name: e for e in AutomationExecution.objects.select_related("rule")}
    assert status["parent"].status == "failed"
    assert status["child"].status == "skipped"
    assert "parent rule 'parent' (failed)" in status["child"].error_message
    assert status["child"].actions_executed == []
    assert status["unrelated"].status == "success"
    assert child.pk and unrelated.pk


def test_a_child_whose_parent_did_not_match_runs_normally(tenant_entity):
    parent = make_rule(
        name="parent", conditions=[{"field_name": "name", "operator": "equals", "value": "nope"}]
    )
    make_rule(name="child", actions=[alert_action()], depends_on=[parent])

    _rename()

    assert list(AutomationExecution.objects.values_list("rule__name", "status")) == [
        ("child", "success")
    ]


def test_a_cycle_is_refused_when_saved_with_its_path(tenant_entity):
    a = make_rule(name="A")
    b = make_rule(name="B", depends_on=[a])
    c = make_rule(name="C", depends_on=[b])

    with pytest.raises(ValidationError) as error:
        rule_save(rule=a, actor=a.created_by, depends_on=[c])

    message = error.value.message_dict["depends_on"][0]
    assert message == f"Dependency cycle: C (#{c.pk}) → A (#{a.pk}) → B (#{b.pk}) → C (#{c.pk})."
    assert not RuleDependency.objects.filter(child_rule=a).exists()
    a.refresh_from_db()
    assert a.version == 1  # nothing of the refused change was kept


def test_a_rule_cannot_depend_on_itself(tenant_entity):
    a = make_rule(name="A")

    with pytest.raises(ValidationError, match="Dependency cycle"):
        rule_save(rule=a, actor=a.created_by, depends_on=[a])
