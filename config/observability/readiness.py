"""``GET /readyz``: may this web process take traffic?

503 while the database does not answer, while migrations the code knows are
not applied (a new release started before its migrate step ran), or while no
django-q2 cluster has finished a task in the last ``READYZ_CLUSTER_MAX_AGE``
seconds. ``/healthz`` stays the liveness check (the process and the database
answer); a load balancer should route by this one.

How cluster liveness is seen: django-q2's own heartbeat (``Stat``, saved by
each cluster's guard every 0.5 s) is kept in Django's cache for 3 seconds;
with the ORM broker and the default local-memory cache it never leaves the
cluster's process, so a web process cannot read it, and a database cache
would add ~10 writes a second per cluster for one bit. What the clusters do
write where everyone can read it is the result of every task they run
(``django_q.models.Task.stopped``, written by the cluster's monitor), and
Bureau's schedules (Knox poll, agent check, outbox drain: every minute) give
a live cluster a task a minute. A cluster whose scheduler, workers or
monitor are stuck stops writing them too, which a heartbeat would not show.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

# Once this process has seen every migration applied it does not look again:
# migrations are not unapplied under a running release, and loading the
# migration graph from disk on every probe would cost more than the probe.
_migrations_seen_applied = False


def _migrations_applied() -> bool:
    global _migrations_seen_applied
    if not _migrations_seen_applied:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        _migrations_seen_applied = not plan
    return _migrations_seen_applied


def forget_migration_state() -> None:
    """For tests: look at the migrations again on the next probe."""
    global _migrations_seen_applied
    _migrations_seen_applied = False


def _cluster_recently_active() -> bool:
    from django_q.models import Task

    since = timezone.now() - timedelta(seconds=settings.READYZ_CLUSTER_MAX_AGE)
    return Task.objects.filter(stopped__gte=since).order_by().exists()


def readiness() -> tuple[bool, dict[str, str]]:
    checks = {"database": "unknown", "migrations": "unknown", "cluster": "unknown"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        checks["database"] = "up"
        checks["migrations"] = "applied" if _migrations_applied() else "pending"
        checks["cluster"] = "active" if _cluster_recently_active() else "silent"
    except DatabaseError:
        logger.warning("readiness check: database unavailable", exc_info=True)
        checks["database"] = "down"
    ready = checks == {"database": "up", "migrations": "applied", "cluster": "active"}
    return ready, checks


@never_cache
@require_GET
def readyz(request):
    """200 when ready, 503 otherwise; the body names which check failed and
    nothing more (load balancers read it without logging in)."""
    ready, checks = readiness()
    response = JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )
    # A 503 here is an answer, not a server error: load balancers probe every
    # few seconds, and Django would log each one at ERROR (django.request).
    response._has_been_logged = True
    return response
