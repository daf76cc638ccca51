"""The poll at scale (issue 11, item 2): status calls to the real simulator
process run from a bounded pool, a chunk of ``KNOX_STATUS_BATCH_SIZE`` each
(⌈N/100⌉ calls), while the database work stays on the calling thread, a
keyset page at a time; a failed call spoils only its own chunk."""

import math
import threading
import time
from collections import Counter

import pytest
import requests
from django.db import connection
from django.db.backends.signals import connection_created
from django.utils import timezone

from approvals.choices import ActionStatus, KnoxStatus
from approvals.knox import get_knox_client
from approvals.models import PendingAction
from approvals.registry import any_requester, register_action_handler, unregister_action_handler
from approvals.selectors import pending_action_pages_in_flight
from approvals.services import pending_actions_poll
from operations.models import Tenant
from tests.approvals.factories import in_flight_actions
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def executed():
    """A handler that counts each document it ran for."""
    runs: Counter[int] = Counter()

    def handler(payload, *, pending_action):
        runs[payload["n"]] += 1
        return {"ok": True}

    register_action_handler("test.counted", handler, authorize=any_requester)
    yield runs
    unregister_action_handler("test.counted")


@pytest.fixture
def in_flight(knox, executed):
    user = UserFactory()

    def make(count: int, prefix: str = "flight"):
        return in_flight_actions(
            count, user=user, action_type="test.counted", knox=knox, prefix=prefix
        )

    return make


def test_the_poll_asks_knox_once_per_hundred_documents(knox, in_flight, executed):
    # given: 250 documents in flight, 30 of them approved in Knox
    actions = in_flight(250)
    for action in actions[:30]:
        knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    client = get_knox_client()
    before = client.calls

    # when
    counts = pending_actions_poll()

    # then: ⌈250/100⌉ status calls, every document checked, the approved ones run once
    assert client.calls - before == math.ceil(250 / 100) == 3
    assert knox.calls() == {"statuses": 3}
    assert counts["checked"] == 250 and counts["executed"] == 30 and counts["failed"] == 0
    assert executed == Counter(range(30))


@pytest.mark.parametrize("concurrency", [1, 3])
def test_no_more_status_calls_run_at_once_than_the_pool_allows(
    knox, in_flight, settings, concurrency
):
    # given: eight chunks of two, and a Knox slow enough that calls overlap if they can
    settings.KNOX_STATUS_BATCH_SIZE = 2
    settings.KNOX_POLL_CONCURRENCY = concurrency
    in_flight(16)
    knox.faults(latency=0.3)

    # when
    counts = pending_actions_poll()

    # then: the simulator saw exactly the pool's size at once, never more
    assert knox.calls() == {"statuses": 8}
    assert knox.max_concurrent_calls() == concurrency
    assert counts["checked"] == 16 and counts["failed"] == 0


def test_a_failed_call_loses_nothing_and_settles_the_other_chunks_once(
    knox, in_flight, executed, settings
):
    # given: six approved documents in three chunks; Knox fails every call about the middle one
    settings.KNOX_STATUS_BATCH_SIZE = 2
    settings.KNOX_POLL_CONCURRENCY = 2
    actions = in_flight(6)
    for action in actions:
        knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
    knox.faults(error_ids=[actions[2].ap_inf_id])

    # when
    counts = pending_actions_poll()

    # then: the other chunks are executed, the failed chunk is left pending
    assert counts["executed"] == 4 and counts["failed"] == 1 and counts["checked"] == 4
    statuses = [status for status in _statuses(actions)]
    assert (
        statuses
        == [ActionStatus.EXECUTED] * 2 + [ActionStatus.PENDING] * 2 + [ActionStatus.EXECUTED] * 2
    )

    # when: Knox answers again, the next cycle settles the rest
    knox.faults()
    again = pending_actions_poll()

    # then: each document executed exactly once over both cycles
    assert again["executed"] == 2 and again["checked"] == 2
    assert set(_statuses(actions)) == {ActionStatus.EXECUTED}
    assert executed == Counter(range(6))


def test_a_cycle_stops_asking_when_knox_keeps_failing(knox, in_flight, settings):
    # given: many chunks, and Knox down
    settings.KNOX_STATUS_BATCH_SIZE = 1
    settings.KNOX_POLL_CONCURRENCY = 2
    in_flight(40)
    knox.faults(statuses="error")

    # when
    counts = pending_actions_poll()

    # then: it gave up after ten failed calls in a row (plus those already under way),
    # instead of asking about all forty
    assert 10 <= knox.calls()["statuses"] < 40
    assert counts["checked"] == 0 and 10 <= counts["failed"] < 40


def test_the_database_is_only_used_from_the_calling_thread(knox, in_flight):
    # given: documents asked about from the pool's threads
    in_flight(300)
    opened_in: list[str] = []

    def record(sender, connection, **kwargs):
        opened_in.append(threading.current_thread().name)

    connection_created.connect(record, dispatch_uid="test_poll_at_scale")
    try:
        # when
        counts = pending_actions_poll()
    finally:
        connection_created.disconnect(dispatch_uid="test_poll_at_scale")

    # then: no thread of the pool opened a database connection
    assert counts["checked"] == 300
    assert not [name for name in opened_in if name.startswith("knox-status")]


def test_the_in_flight_documents_are_read_a_page_at_a_time(in_flight, django_assert_num_queries):
    # given
    actions = in_flight(7)

    # when
    with django_assert_num_queries(3):
        pages = list(pending_action_pages_in_flight(created_before=timezone.now(), size=3))

    # then: pages of at most three, in primary-key order, every document once
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [row.pk for page in pages for row in page] == [action.pk for action in actions]


@pytest.fixture
def writes_a_tenant(demo_workspace):
    """A handler that writes a tenant for its document, and fails for document 2."""
    runs: Counter[int] = Counter()

    def handler(payload, *, pending_action):
        runs[payload["n"]] += 1
        Tenant.objects.create(workspace=demo_workspace, name=f"Tenant {payload['n']}")
        if payload["n"] == 2:
            raise RuntimeError("ERP said no")
        return {"ok": True}

    register_action_handler("test.tenant", handler, authorize=any_requester)
    yield runs
    unregister_action_handler("test.tenant")


def test_a_handler_failing_in_a_batch_is_recorded_once_and_the_others_execute_once(
    knox, writes_a_tenant
):
    # given: five approved documents settled in one batch; the handler fails on the third
    actions = in_flight_actions(5, user=UserFactory(), action_type="test.tenant", knox=knox)
    for action in actions:
        knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)

    # when
    counts = pending_actions_poll()

    # then: the failure is recorded without running that handler a second time,
    # and each other document's writes are there exactly once
    assert counts["executed"] == 4 and counts["failed"] == 1
    assert writes_a_tenant[2] == 1
    assert (
        _statuses(actions)
        == [ActionStatus.EXECUTED] * 2 + [ActionStatus.FAILED] + [ActionStatus.EXECUTED] * 2
    )
    failed = PendingAction.objects.get(pk=actions[2].pk)
    assert "ERP said no" in failed.error_message
    assert sorted(Tenant.objects.values_list("name", flat=True)) == [
        f"Tenant {n}" for n in (0, 1, 3, 4)
    ]


def test_an_approved_document_costs_about_one_statement(knox, in_flight):
    # given: two polls, one with 20 approved documents and one with 40
    def statements_to_settle(approved: int) -> int:
        actions = in_flight(approved, prefix=f"batch{approved}-")
        for action in actions:
            knox.decide(action.ap_inf_id, KnoxStatus.COMPLETE)
        statements = []

        def count(execute, sql, params, many, context):
            statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            assert pending_actions_poll()["executed"] == approved
        return len(statements)

    # when
    twenty = statements_to_settle(20)
    forty = statements_to_settle(40)

    # then: twenty more approved documents cost about twenty more statements
    # (the action's UPDATE each; no requester query, no savepoint per handler)
    assert forty - twenty <= 22


def _statuses(actions):
    by_pk = dict(
        PendingAction.objects.filter(pk__in=[a.pk for a in actions]).values_list("pk", "status")
    )
    return [by_pk[action.pk] for action in actions]


def test_a_call_still_sleeping_from_before_a_reset_is_not_counted_after_it(knox, settings):
    # given: a status call the client gave up on while the simulator still sleeps in it
    knox.faults(latency=1.5)
    with pytest.raises(requests.Timeout):
        requests.post(knox.url + settings.KNOX_STATUS_PATH, json={}, timeout=0.2)

    # when: the next test's reset, and one call of its own
    knox.reset()
    requests.post(knox.url + settings.KNOX_STATUS_PATH, json={}, timeout=5)

    # then: only that call was in flight
    assert knox.max_concurrent_calls() == 1
    time.sleep(1.5)  # the old call ends: it must not make the count negative
    requests.post(knox.url + settings.KNOX_STATUS_PATH, json={}, timeout=5)
    assert knox.max_concurrent_calls() == 1
