"""config/db.py's bulk writes, on both databases."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.db import update_by_pks
from operations.models import OperationRun
from tests.operations.factories import OperationRunFactory

pytestmark = pytest.mark.django_db


def test_update_by_pks_writes_exactly_the_rows_named_in_one_statement():
    # given: five runs, three of them named
    runs = [OperationRunFactory() for _ in range(5)]
    named = [run.pk for run in runs[:3]]
    when = timezone.now() - timedelta(days=3)

    # when
    with CaptureQueriesContext(connection) as queries:
        changed = update_by_pks(OperationRun, named, updated_at=when)

    # then
    assert changed == 3
    assert len(queries) == 1
    assert set(OperationRun.objects.filter(updated_at=when).values_list("pk", flat=True)) == set(
        named
    )


def test_update_by_pks_with_no_keys_sends_nothing():
    OperationRunFactory()

    with CaptureQueriesContext(connection) as queries:
        assert update_by_pks(OperationRun, [], updated_at=timezone.now()) == 0

    assert len(queries) == 0
