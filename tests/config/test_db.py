"""config/db.py's bulk writes, on both databases."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.db import update_by_pks, update_rows
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


def test_update_rows_writes_each_row_its_own_values_in_one_statement_and_no_other_row():
    # given: three runs, two of them changed in memory with awkward values:
    # JSON lists and objects with quotes, braces, commas, backslashes and
    # non-ASCII text (an array literal's own syntax), a NULL, a time
    runs = [OperationRunFactory(initiator_name="before") for _ in range(3)]
    first, second, untouched = runs
    when = timezone.now() - timedelta(hours=5)
    first.initiator_name = 'say "hi", {now}\\ 안녕'
    first.failure_summary = [{"code": "x", "message": 'a "quoted", {braced} \\ line'}]
    first.context = {"list": [1, 2, {"nested": None}], "text": "}{,"}
    first.completed_at = when
    second.initiator_name = ""
    second.failure_summary = []
    second.context = {}
    second.completed_at = None
    fields = ["initiator_name", "failure_summary", "context", "completed_at"]

    # when
    with CaptureQueriesContext(connection) as queries:
        update_rows([first, second], fields)

    # then: one statement on PostgreSQL (unnest), one executemany elsewhere
    assert len(queries) == 1
    for run in (first, second):
        stored = OperationRun.objects.get(pk=run.pk)
        for name in fields:
            assert getattr(stored, name) == getattr(run, name), name
    stored = OperationRun.objects.get(pk=untouched.pk)
    assert stored.initiator_name == "before"


def test_update_rows_writes_a_row_listed_twice_with_its_last_values():
    run = OperationRunFactory(initiator_name="before")
    stale = OperationRun.objects.get(pk=run.pk)
    stale.initiator_name = "older"
    run.initiator_name = "newer"

    update_rows([stale, run], ["initiator_name"])

    assert OperationRun.objects.get(pk=run.pk).initiator_name == "newer"


def test_update_rows_refuses_a_value_the_table_refuses_and_writes_nothing():
    # given: a status outside the ledger's CHECK constraint, beside a valid row
    good, bad = OperationRunFactory(), OperationRunFactory()
    good.initiator_name = "changed"
    bad.initiator_name = "changed"
    bad.status = "nonsense"

    # when / then: the statement fails whole (the caller's transaction decides)
    with pytest.raises(IntegrityError), transaction.atomic():
        update_rows([good, bad], ["initiator_name", "status"])
    assert not OperationRun.objects.filter(initiator_name="changed").exists()
