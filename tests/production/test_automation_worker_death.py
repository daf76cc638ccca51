"""Automation's workers die; the work goes on elsewhere (issue 10, item 3).

Two real ``qcluster`` processes (one worker each) share one PostgreSQL. The
first is killed with SIGKILL, with everything it forked, in the middle of
draining the outbox or of sending a webhook; the second finishes the work
through the schedules production runs, and the counts show nothing lost and
nothing done twice: one execution and one alert per event, and every
webhook received under its own ``Idempotency-Key`` (a real local HTTP
receiver counts them; the one the dead worker was sending arrives twice,
under the same key, so the receiver can drop the repeat). Leases are
shortened so that each test takes seconds; the takeover times printed are
measured, and the README reports them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.db import transaction

from automation import events
from automation.entities import entities_sync
from automation.models import Alert, AutomationEvent, AutomationExecution, NotificationDelivery
from automation.senders import IDEMPOTENCY_HEADER
from operations.choices import RunOutcome, RunStatus
from operations.models import OperationRun, Tenant
from tests.automation.factories import alert_action, make_rule
from tests.conftest import on_postgres
from tests.live_server import start_manage, stop_process, wait_until
from tests.operations.factories import UserFactory, WorkspaceFactory
from tests.production.test_worker_death import due_now, kill

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not on_postgres(),
        reason="several worker processes on one database: the production shape is PostgreSQL",
    ),
]

LEASE_SECONDS = 5
TWO_MINUTES = 120
EVENTS = 2000
WEBHOOK_SECRET = "kill-test-webhook-secret"


@pytest.fixture
def clusters(settings):
    """Start ``qcluster`` processes (one worker each) on the test database, with
    short leases; all are stopped at the end. One drainer per backlog, so the
    task killed is the only one draining."""
    settings.RUN_LEASE_SECONDS = LEASE_SECONDS
    settings.AUTOMATION_WEBHOOK_SECRET = WEBHOOK_SECRET
    entities_sync()
    call_command("sync_schedules", verbosity=0)
    started = []

    def start() -> object:
        process = start_manage(
            "qcluster",
            Q_WORKERS="1",
            RUN_LEASE_SECONDS=str(LEASE_SECONDS),
            AUTOMATION_DELIVERY_LEASE_SECONDS=str(LEASE_SECONDS),
            AUTOMATION_OUTBOX_DRAINERS="1",
            AUTOMATION_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        output = stop_process(process)
        print(output[-3000:])  # shown by pytest when the test failed


def _commit_renames(count: int) -> None:
    """Rename ``count`` tenants in one transaction: ``count`` events."""
    workspace = WorkspaceFactory()
    tenants = Tenant.objects.bulk_create(
        [Tenant(workspace=workspace, name=f"kill {n}") for n in range(count)]
    )
    with transaction.atomic():
        for tenant in tenants:
            tenant.name = f"renamed {tenant.pk}"
            tenant.save()


def _processed() -> int:
    return AutomationEvent.objects.filter(status="processed").count()


def _assert_each_event_ran_once(count: int) -> None:
    assert AutomationEvent.objects.filter(status="processed").count() == count
    assert AutomationExecution.objects.count() == count
    assert AutomationExecution.objects.values("event").distinct().count() == count
    assert AutomationExecution.objects.exclude(status="success").count() == 0
    assert Alert.objects.count() == count


def test_a_drain_killed_on_commit_is_finished_by_the_schedule_on_another_worker(clusters):
    # given: a rule that alerts on every rename, and a worker waiting
    make_rule(name="alert on rename", actions=[alert_action()])
    first = clusters()

    # when: 2,000 events commit in one transaction, the task queued on commit
    # starts draining them on the first worker, and the worker is killed
    _commit_renames(EVENTS)
    assert wait_until(lambda: _processed() >= 100, timeout=60, interval=0.05), (
        "the first worker never started draining"
    )
    killed_at = kill(first)
    left = EVENTS - _processed()
    assert left > 0, "the drain finished before the kill"

    # then: the drain schedule on the second worker processes what was left
    clusters()
    due_now("automation.drain_outbox")
    finished = wait_until(lambda: _processed() == EVENTS, timeout=TWO_MINUTES, interval=0.5)
    took = time.monotonic() - killed_at
    print(
        f"outbox drain (on-commit task) killed with {left} events left: finished {took:.1f} s later"
    )
    assert finished, f"{EVENTS - _processed()} events still pending two minutes after the kill"
    _assert_each_event_ran_once(EVENTS)


def test_a_scheduled_drain_killed_mid_run_is_taken_over_after_its_lease(clusters, monkeypatch):
    # given: events committed with no task queued (the nudge lost), so the
    # drain schedule is what processes them
    make_rule(name="alert on rename", actions=[alert_action()])
    monkeypatch.setattr(events, "request_outbox_processing", lambda: None)
    _commit_renames(EVENTS)
    first = clusters()

    # when: the first worker's scheduled drain is killed mid-run
    due_now("automation.drain_outbox")
    assert wait_until(lambda: _processed() >= 100, timeout=90, interval=0.05), (
        "the first worker never started draining"
    )
    killed_at = kill(first)
    left = EVENTS - _processed()
    assert left > 0, "the drain finished before the kill"
    dead = OperationRun.objects.get(type="automation.drain_outbox", status=RunStatus.RUNNING)

    # then: the second worker processes the rest (the next drain, or the
    # scheduled-rules tick, which drains the outbox too), and once the lease
    # ran out the next scheduled drain takes the dead run over
    clusters()
    time.sleep(LEASE_SECONDS)
    due_now("automation.drain_outbox")
    finished = wait_until(lambda: _processed() == EVENTS, timeout=TWO_MINUTES, interval=0.5)
    took = time.monotonic() - killed_at
    print(f"scheduled outbox drain killed with {left} events left: finished {took:.1f} s later")
    assert finished, f"{EVENTS - _processed()} events still pending two minutes after the kill"
    _assert_each_event_ran_once(EVENTS)
    taken_over = wait_until(
        lambda: OperationRun.objects.filter(pk=dead.pk, status=RunStatus.COMPLETED).exists(),
        timeout=TWO_MINUTES - took,
        interval=0.5,
    )
    print(f"the dead drain run was taken over {time.monotonic() - killed_at:.1f} s after the kill")
    assert taken_over, "the dead drain run is still running two minutes after the kill"
    dead.refresh_from_db()
    assert dead.outcome == RunOutcome.FAILED
    assert [f["code"] for f in dead.failure_summary] == ["run.lease_expired"]


class HangingReceiver:
    """A real webhook receiver on 127.0.0.1 counting requests by their
    ``Idempotency-Key``. The first request is held unanswered (its sender is
    killed meanwhile); every later one gets 200."""

    def __init__(self) -> None:
        self.keys: Counter = Counter()
        self.first_arrived = threading.Event()
        self.release = threading.Event()
        receiver = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    receiver.keys[self.headers[IDEMPOTENCY_HEADER]] += 1
                    first = sum(receiver.keys.values()) == 1
                if first:
                    receiver.first_arrived.set()
                    receiver.release.wait(timeout=60)
                # The first request's sender is dead by now: its socket may be gone.
                with contextlib.suppress(OSError):
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/bureau"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def test_a_webhook_whose_sender_was_killed_is_sent_again_by_another_worker_with_its_key(
    clusters,
):
    # given: a webhook rule, three renames (three deliveries), and a receiver
    # that holds the first request it gets
    deliveries = 3
    with HangingReceiver() as receiver:
        make_rule(
            actor=UserFactory(),
            name="webhook on rename",
            actions=[
                {
                    "name": "notify",
                    "action_type": "send_notification",
                    "execution_order": 1,
                    "action_config": {
                        "channels": ["webhook"],
                        "webhook_url": receiver.url,
                        "subject": "Tenant {{name}}",
                        "message": "Tenant {{id}} renamed.",
                    },
                }
            ],
        )
        first = clusters()

        # when: the first worker sends the first webhook and is killed while
        # the receiver has it (the outcome is never recorded)
        _commit_renames(deliveries)
        assert receiver.first_arrived.wait(timeout=60), "no webhook was sent"
        killed_at = kill(first)
        in_flight = NotificationDelivery.objects.get(lease_until__isnull=False)
        assert (in_flight.status, in_flight.attempts) == ("pending", 1)

        # then: after the lease, the retry schedule on the second worker sends
        # it again, and sends the two the dead worker never reached
        clusters()
        time.sleep(LEASE_SECONDS)
        due_now("automation.retry_deliveries")
        finished = wait_until(
            lambda: NotificationDelivery.objects.filter(status="delivered").count() == deliveries,
            timeout=TWO_MINUTES,
            interval=0.5,
        )
        took = time.monotonic() - killed_at
        print(f"webhook delivery killed mid-send: all delivered {took:.1f} s later")
        assert finished, list(NotificationDelivery.objects.values("status", "error_message"))

    # every delivery reached the receiver under its own key; the one whose
    # sender died arrived twice under the same key (the receiver's to drop)
    keys = {str(d.notification_id) for d in NotificationDelivery.objects.all()}
    assert set(receiver.keys) == keys
    assert receiver.keys[str(in_flight.notification_id)] == 2
    assert sum(receiver.keys.values()) == deliveries + 1
    in_flight.refresh_from_db()
    assert (in_flight.status, in_flight.attempts, in_flight.abandoned_attempts) == (
        "delivered",
        2,
        1,
    )
