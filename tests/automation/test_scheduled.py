"""Scheduled rules: a cron expression, a minute tick that runs due rules
against the rows matching their conditions, recorded as an operation run."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from automation.models import Alert, AutomationExecution, AutomationRule
from automation.tasks import scheduled_rules_task
from operations.models import OperationRun
from tests.automation.factories import alert_action, make_rule
from tests.operations.factories import TenantFactory

pytestmark = pytest.mark.django_db


def _make_due(rule):
    AutomationRule.objects.filter(pk=rule.pk).update(
        next_run_at=timezone.now() - timedelta(seconds=5)
    )


def test_a_due_scheduled_rule_runs_once_per_matching_row_and_is_recorded(tenant_entity):
    # given: three tenants, two of which match; a rule due now
    TenantFactory(name="Acme North")
    TenantFactory(name="Acme South")
    TenantFactory(name="Globex")
    rule = make_rule(
        name="nightly",
        trigger="scheduled",
        cron_expression="0 2 * * *",
        conditions=[{"field_name": "name", "operator": "contains", "value": "Acme"}],
        actions=[alert_action()],
    )
    assert rule.next_run_at > timezone.now()
    _make_due(rule)

    # when
    counts = scheduled_rules_task()
    again = scheduled_rules_task()

    # then
    assert counts["rules_due"] == 1 and counts["rows_checked"] == 3
    assert counts["rows_matched"] == 2 and counts["executions"] == 2
    assert again.get("rules_due", 0) == 0  # not due again until the next slot
    assert sorted(Alert.objects.values_list("title", flat=True)) == [
        "Tenant Acme North changed",
        "Tenant Acme South changed",
    ]
    rule.refresh_from_db()
    assert rule.next_run_at > timezone.now() and rule.last_run_at is not None
    assert AutomationExecution.objects.filter(schedule_slot__isnull=False).count() == 2
    run = OperationRun.objects.filter(type="automation.scheduled_rules").order_by("id").first()
    assert run.outcome == "succeeded"
    assert run.summary_counts == {
        "rules_due": 1,
        "rules_run": 1,
        "rows_checked": 3,
        "rows_matched": 2,
        "executions": 2,
    }


def test_a_rule_not_yet_due_does_not_run(tenant_entity):
    TenantFactory()
    make_rule(
        name="later", trigger="scheduled", cron_expression="*/5 * * * *", actions=[alert_action()]
    )

    counts = scheduled_rules_task()

    assert counts == {"rules_due": 0}
    assert not AutomationExecution.objects.exists()


@pytest.mark.parametrize(
    ("cron", "conditions", "message"),
    [
        ("", [], "needs a cron expression"),
        ("every day", [], "not a valid cron expression"),
        (
            "* * * * *",
            [{"field_name": "name", "operator": "changed_to", "value": "x"}],
            "only on_update rules have one",
        ),
    ],
)
def test_scheduled_rules_are_validated_when_saved(tenant_entity, cron, conditions, message):
    with pytest.raises(ValidationError, match=message):
        make_rule(name="bad", trigger="scheduled", cron_expression=cron, conditions=conditions)


def test_one_broken_scheduled_rule_does_not_stop_the_tick(tenant_entity):
    # given: two due rules; the first (due earlier) watches a model that is gone
    from automation.models import Entity

    TenantFactory(name="Acme")
    broken = make_rule(name="broken", trigger="scheduled", cron_expression="0 2 * * *")
    healthy = make_rule(
        name="healthy", trigger="scheduled", cron_expression="0 2 * * *", actions=[alert_action()]
    )
    gone = Entity.objects.create(
        name="gone_thing", model_label="gone.Thing", entity_type=tenant_entity.entity_type
    )
    AutomationRule.objects.filter(pk=broken.pk).update(
        entity=gone, next_run_at=timezone.now() - timedelta(minutes=1)
    )
    _make_due(healthy)

    # when
    counts = scheduled_rules_task()

    # then: the healthy rule ran; the broken one is counted, recorded and moved on
    assert counts["rules_due"] == 2 and counts["rules_run"] == 1
    assert counts["rules_failed"] == 1
    assert Alert.objects.count() == 1
    broken.refresh_from_db()
    assert broken.next_run_at > timezone.now() and broken.last_run_at is None
    run = OperationRun.objects.get(type="automation.scheduled_rules")
    assert run.summary_counts["rules_failed"] == 1
    (failure,) = run.failure_summary
    assert failure["code"] == "automation.scheduled_rule_failed"
    assert f"Scheduled rule {broken.pk} failed" in failure["message"]
    assert "the app 'gone' is not installed" in failure["message"]
