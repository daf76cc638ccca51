"""Concurrent claims with real threads, one connection each. On PostgreSQL
the sessions truly overlap (row locks, SKIP LOCKED, the unique index waiting
on an uncommitted row); on SQLite the IMMEDIATE write lock serialises them.
Either way there must be exactly one winner."""

import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from scanning import services
from scanning.choices import ACTIVE_STATUSES, ScanJobStatus
from scanning.models import ScanJob
from scanning.services import scan_agent_create
from tests.concurrency import run_concurrently
from tests.conftest import on_postgres
from tests.scanning.factories import ScanJobFactory

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8


def test_concurrent_claims_have_exactly_one_winner(agent):
    # given: more queued jobs than claimers, so SKIP LOCKED hands each a different row
    jobs = [
        ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at=timezone.now())
        for _ in range(THREADS)
    ]

    # ... and one agent per claimer (one agent's retried claim returns the job it holds)
    agents = iter(
        [agent.agent] + [scan_agent_create(name=f"host-{n}").agent for n in range(1, THREADS)]
    )
    claimers = threading.Lock()

    def claim():
        with claimers:
            mine = next(agents)
        return services.scan_job_claim(agent=mine)

    # when
    results, errors = run_concurrently(claim, THREADS)

    # then
    assert errors == []
    winners = [job for job in results if job is not None]
    assert len(winners) == 1
    assert ScanJob.objects.filter(status__in=ACTIVE_STATUSES).count() == 1
    assert ScanJob.objects.filter(status=ScanJobStatus.QUEUED).count() == len(jobs) - 1


def test_concurrent_claims_through_the_api_give_one_200_and_the_rest_204(agent):
    from rest_framework.test import APIClient

    for _ in range(3):
        ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at=timezone.now())

    tokens = iter(
        [agent.token] + [scan_agent_create(name=f"host-{n}").token for n in range(1, THREADS)]
    )
    claimers = threading.Lock()

    def claim():
        with claimers:
            token = next(tokens)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client.post("/api/v1/scanning/agent/claim/").status_code

    results, errors = run_concurrently(claim, THREADS)

    assert errors == []
    assert sorted(results) == [200] + [204] * (THREADS - 1)


@pytest.mark.skipif(
    not on_postgres(), reason="needs two overlapping transactions: SQLite has one writer"
)
def test_a_claim_racing_an_uncommitted_claim_is_refused_by_the_index(agent):
    """Deterministic version of the race on PostgreSQL: session A has moved a
    job to ready but not committed; session B's claim passes the Python
    check (it cannot see A's row), blocks on the unique index, and loses
    when A commits."""
    first = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at=timezone.now())
    second = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at=timezone.now())
    a_moved = threading.Event()
    release_a = threading.Event()

    def session_a():
        try:
            with transaction.atomic():
                ScanJob.objects.filter(pk=first.pk).update(status=ScanJobStatus.READY)
                a_moved.set()
                release_a.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=session_a)
    holder.start()
    assert a_moved.wait(timeout=10)
    outcome = {}

    def session_b():
        try:
            outcome["claimed"] = services.scan_job_claim(agent=agent.agent)
        finally:
            connection.close()

    claimer = threading.Thread(target=session_b)
    claimer.start()
    claimer.join(timeout=1.0)
    assert claimer.is_alive(), "B should be waiting on the unique index"
    release_a.set()
    holder.join(timeout=10)
    claimer.join(timeout=10)

    assert outcome["claimed"] is None
    second.refresh_from_db()
    assert second.status == ScanJobStatus.QUEUED
    assert list(
        ScanJob.objects.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True)
    ) == [first.pk]


def test_concurrent_retried_claims_by_one_agent_all_get_its_one_job(agent):
    # given: the agent's claim requests are retried at once (responses lost)
    jobs = [ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at=timezone.now()) for _ in range(3)]

    results, errors = run_concurrently(lambda: services.scan_job_claim(agent=agent.agent), THREADS)

    # then: never two jobs for it; every claim that got one got the same one
    assert errors == []
    held = {job.pk for job in results if job is not None}
    assert len(held) == 1
    assert ScanJob.objects.filter(status__in=ACTIVE_STATUSES).count() == 1
    assert ScanJob.objects.filter(status=ScanJobStatus.QUEUED).count() == len(jobs) - 1
    assert services.scan_job_claim(agent=agent.agent).pk in held
