"""GET /readyz: database, migrations, a cluster that reported recently."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from tests.observability.factories import TaskFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_ready_when_the_database_answers_migrations_are_applied_and_a_cluster_reported(client):
    # given: a cluster finished a task half a minute ago
    TaskFactory(stopped=timezone.now() - timedelta(seconds=30))

    # when
    response = client.get("/readyz")

    # then
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "up", "migrations": "applied", "cluster": "active"},
    }
    assert response["Cache-Control"].startswith("max-age=0")


def test_not_ready_while_no_cluster_has_finished_a_task_in_the_window(client, settings):
    # given: the last task finished 10 minutes ago, the window is 3 minutes
    settings.READYZ_CLUSTER_MAX_AGE = 180
    TaskFactory(stopped=timezone.now() - timedelta(minutes=10))

    # when
    response = client.get("/readyz")

    # then: not ready, and healthz (liveness) is still fine
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "up",
        "migrations": "applied",
        "cluster": "silent",
    }
    assert client.get("/healthz").status_code == 200


def test_not_ready_when_no_cluster_ever_reported(client):
    # given: no task result at all (a fresh install whose workers never started)

    # when
    response = client.get("/readyz")

    # then
    assert response.status_code == 503
    assert response.json()["checks"]["cluster"] == "silent"


def test_not_ready_while_a_migration_of_this_release_is_unapplied(client):
    # given: a cluster is fine, but the newest scanning migration is not applied
    TaskFactory()
    latest = MigrationRecorder.Migration.objects.filter(app="scanning").order_by("-id").first()
    latest.delete()

    # when
    response = client.get("/readyz")

    # then
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "pending"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_not_ready_and_not_alive_while_the_database_is_unreachable():
    # given: a process whose DATABASE_URL points at a port nothing listens on
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": f"postgres://bureau@127.0.0.1:{_free_port()}/bureau",
    }
    script = (
        "import json\n"
        "import django\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "client = Client(HTTP_HOST='localhost')\n"
        "ready, alive = client.get('/readyz'), client.get('/healthz')\n"
        "print(json.dumps([ready.status_code, ready.json(), alive.status_code]))\n"
    )

    # when
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # then
    assert result.returncode == 0, result.stderr
    ready_status, ready_body, alive_status = json.loads(result.stdout.splitlines()[-1])
    assert ready_status == 503
    assert ready_body["checks"]["database"] == "down"
    assert alive_status == 503
