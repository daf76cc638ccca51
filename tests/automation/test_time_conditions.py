"""Time-based conditions ("based on a date field"): older_than, newer_than and
within_next against a relative interval. A scheduled rule filters on them in
the database, so rows outside the window are never read; events, dry runs and
backtests evaluate them on the row's values with the same bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from automation.conditions import evaluate, parse_interval
from automation.models import Alert, AutomationRule
from automation.tasks import scheduled_rules_task
from operations.models import Tenant
from tests.automation.factories import alert_action, make_rule
from tests.operations.factories import TenantFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _cond(operator, value, field="created_at"):
    return {"field_conditions": [{"field_name": field, "operator": operator, "value": value}]}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("30m", 1800), ("2h", 7200), ("7d", 604800), ("1w", 604800)],
)
def test_intervals(text, seconds):
    assert parse_interval(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["7", "d7", "0d", "-1d", "7 d", "7y", 7, None, "1234567d"])
def test_what_is_not_an_interval(text):
    assert parse_interval(text) is None


@pytest.mark.parametrize(
    ("operator", "value", "moment", "matched"),
    [
        ("older_than", "7d", NOW - timedelta(days=8), True),
        ("older_than", "7d", NOW - timedelta(days=6), False),
        ("newer_than", "7d", NOW - timedelta(days=6), True),
        ("newer_than", "7d", NOW - timedelta(days=8), False),
        ("within_next", "30m", NOW + timedelta(minutes=29), True),
        ("within_next", "30m", NOW + timedelta(minutes=31), False),
        ("within_next", "30m", NOW - timedelta(minutes=1), False),
        ("older_than", "7d", None, False),
        ("older_than", "7d", "not a date", False),
        # dates compare with the bounds' dates
        ("older_than", "7d", date(2026, 11, 22), True),
        ("older_than", "7d", date(2026, 11, 23), False),
    ],
)
def test_evaluated_on_a_rows_values(operator, value, moment, matched):
    values = {"created_at": moment.isoformat() if hasattr(moment, "isoformat") else moment}

    result, _ = evaluate(_cond(operator, value), new=values, old=None, now=NOW)

    assert result is matched


@pytest.mark.parametrize(
    ("condition", "named"),
    [
        ({"field_name": "created_at", "operator": "older_than", "value": "7"}, "needs an interval"),
        ({"field_name": "created_at", "operator": "within_next", "value": 30}, "needs an interval"),
        ({"field_name": "name", "operator": "older_than", "value": "7d"}, "date or date-time"),
    ],
)
def test_a_bad_time_condition_is_a_400_naming_it(tenant_entity, condition, named):
    client = APIClient()
    client.force_authenticate(UserFactory(is_superuser=True, is_staff=True))

    response = client.post(
        "/api/v1/automation/rules/",
        {
            "name": "old tenants",
            "entity": "operations_tenant",
            "trigger_type": "scheduled",
            "cron_expression": "0 3 * * *",
            "trigger_conditions": {"field_conditions": [condition]},
        },
        format="json",
    )

    assert response.status_code == 400
    assert named in str(response.data["trigger_conditions"])
    assert not AutomationRule.objects.exists()


def _due(rule):
    AutomationRule.objects.filter(pk=rule.pk).update(
        next_run_at=timezone.now() - timedelta(seconds=5)
    )


def test_a_scheduled_rule_reads_only_the_rows_in_the_window(tenant_entity):
    # given: 3 tenants created 10, 20 and 40 days ago, 2 today; the rule wants
    # tenants older than 15 days whose name contains "a"
    now = timezone.now()
    ages = {"Acme": 10, "Beta": 20, "Gamma": 40, "Delta": 0, "Echo": 0}
    for name, days in ages.items():
        tenant = TenantFactory(name=name)
        Tenant.objects.filter(pk=tenant.pk).update(created_at=now - timedelta(days=days))
    rule = make_rule(
        name="old tenants",
        trigger="scheduled",
        cron_expression="0 3 * * *",
        conditions=[
            {"field_name": "created_at", "operator": "older_than", "value": "15d"},
            {"field_name": "name", "operator": "contains", "value": "a"},
        ],
        actions=[alert_action()],
    )
    _due(rule)

    # when
    with CaptureQueriesContext(connection) as queries:
        counts = scheduled_rules_task()

    # then: two rows read (Beta, Gamma), both match
    assert (counts["rows_checked"], counts["rows_matched"]) == (2, 2)
    assert sorted(Alert.objects.values_list("title", flat=True)) == [
        "Tenant Beta changed",
        "Tenant Gamma changed",
    ]
    tenant_reads = [q["sql"] for q in queries if 'FROM "operations_tenant"' in q["sql"]]
    assert any('"created_at" <' in sql for sql in tenant_reads), tenant_reads


N = 100_000


def test_over_100000_rows_only_the_window_is_read(tenant_entity, django_assert_max_num_queries):
    # given: 100,000 tenants, 50 of them created in the next 30 minutes' window
    workspace = WorkspaceFactory()
    now = timezone.now()
    Tenant.objects.bulk_create(
        (Tenant(workspace=workspace, name=f"t{i}") for i in range(N)), batch_size=5000
    )
    # created_at is auto_now_add: the window's rows are moved into the future after
    soon = [f"t{i}" for i in range(0, N, 2000)]
    Tenant.objects.filter(name__in=soon).update(created_at=now + timedelta(minutes=10))
    rule = make_rule(
        name="soon",
        trigger="scheduled",
        cron_expression="*/5 * * * *",
        conditions=[{"field_name": "created_at", "operator": "within_next", "value": "30m"}],
        actions=[],
    )
    _due(rule)

    # when
    counts = scheduled_rules_task()

    # then
    assert counts.get("rules_run") == 1, counts
    assert Tenant.objects.count() == N
    assert (counts["rows_checked"], counts["rows_matched"]) == (50, 50)
    assert counts["executions"] == 50
    if connection.vendor == "postgresql":
        # and the filter is the index's: the planner reads the window, not the table
        from automation.conditions import time_filter
        from automation.engine.scheduled import time_fields_of

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE operations_tenant")
        query = Tenant.objects.filter(
            time_filter(
                rule.trigger_conditions,
                now=timezone.now(),  # as the tick had it: after the rows were written
                field_attname=time_fields_of(Tenant),
            )
        )
        assert "tenant_created_at" in query.explain()
