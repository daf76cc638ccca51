"""A failed or partial execution writes one log line an operator can search
for: the execution's id, its rule, and the reason."""

from __future__ import annotations

import logging

import pytest

from automation.models import AutomationExecution
from tests.automation.factories import alert_action, make_rule, update_field_action
from tests.operations.factories import TenantFactory

pytestmark = pytest.mark.django_db


def test_a_partial_execution_logs_one_line_with_its_id_and_reason(
    tenant_entity, workspace_slug_writable, django_capture_on_commit_callbacks, caplog
):
    # given: the second action will fail (the slug is taken)
    rule = make_rule(
        name="two steps",
        actions=[alert_action(order=1), update_field_action("workspace.slug", "{{name}}", order=2)],
    )
    TenantFactory(workspace__slug="taken")
    tenant = TenantFactory()

    # when
    with (
        caplog.at_level(logging.WARNING, logger="automation.engine.execution"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        tenant.name = "taken"
        tenant.save()

    # then
    execution = AutomationExecution.objects.get(rule=rule)
    lines = [r.getMessage() for r in caplog.records if r.name == "automation.engine.execution"]
    mine = [line for line in lines if f"execution {execution.pk} " in line]
    assert execution.status == "partial"
    assert len(mine) == 1, lines
    assert f"of rule {rule.pk}" in mine[0] and "partial" in mine[0]
    assert execution.error_message.split(":")[0] in mine[0]
