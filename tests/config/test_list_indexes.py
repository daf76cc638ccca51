"""Each list's default order is an index, so the newest page (and a cursor
page, anywhere in the list) is read from the index, never sorted (issue 11,
item 3). Checked on the database's own query plan."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from approvals.selectors import pending_action_list
from automation.selectors import alerts_mine, deliveries_list, executions_list
from operations.selectors import operation_runs_visible_to
from scanning.models import Document, ScanJob

pytestmark = pytest.mark.django_db

User = get_user_model()


def _staff():
    return User(pk=1, is_staff=True, is_superuser=True)


def _reader():
    return User(pk=2, is_staff=False, is_superuser=False)


LISTS = {
    "runs": lambda: operation_runs_visible_to(_staff()).order_by("-created_at", "-id"),
    "pending actions": lambda: pending_action_list(user=_staff()),
    "my pending actions": lambda: pending_action_list(user=_reader()),
    "executions": executions_list,
    "deliveries": deliveries_list,
    "my deliveries": lambda: deliveries_list().filter(recipient_user_id=2),
    "scan jobs": lambda: ScanJob.objects.all(),
    "documents": lambda: Document.objects.all(),
    "my alerts": lambda: alerts_mine(_reader()),
}


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Tables are empty here: forbid the sequential scan and the sort the
            # planner would rightly choose for them, so that a Sort left in the
            # plan says no index can serve the order.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


@pytest.mark.parametrize("name", LISTS)
def test_the_first_page_is_read_in_index_order_not_sorted(name):
    # when: the plan of a first page in the list's default order
    plan = _plan(LISTS[name]()[:50])

    # then: no sort step over the table
    assert "TEMP B-TREE FOR ORDER BY" not in plan, plan  # SQLite
    assert "Sort" not in plan, plan  # PostgreSQL
