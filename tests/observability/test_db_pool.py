"""DB_POOL: Django's psycopg connection pool, from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import on_postgres
from tests.live_server import database_url

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "x" * 50}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


SHOW_DATABASE = (
    "import json\n"
    "from django.conf import settings\n"
    "db = settings.DATABASES['default']\n"
    "print(json.dumps({'conn_max_age': db['CONN_MAX_AGE'], 'pool': db['OPTIONS'].get('pool')}))\n"
)


def test_the_pool_is_configured_from_the_environment_and_replaces_persistent_connections():
    # when: a pool is asked for, with persistent connections also set
    result = _run(
        SHOW_DATABASE,
        DATABASE_URL="postgres://bureau@db.example.internal:5432/bureau",
        DB_POOL="true",
        DB_POOL_MIN_SIZE="1",
        DB_POOL_MAX_SIZE="8",
        DB_POOL_TIMEOUT="2.5",
        DB_CONN_MAX_AGE="600",
    )

    # then: Django refuses both at once, so the pool wins
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "conn_max_age": 0,
        "pool": {"min_size": 1, "max_size": 8, "timeout": 2.5},
    }


def test_without_db_pool_connections_stay_persistent():
    # when
    result = _run(SHOW_DATABASE, DATABASE_URL="postgres://bureau@db.example.internal/bureau")

    # then
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"conn_max_age": 600, "pool": None}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "sqlite:///var/x.sqlite3"}, "DB_POOL=true needs PostgreSQL"),
        (
            {"DATABASE_URL": "postgres://b@h/b", "DB_POOL_MIN_SIZE": "9", "DB_POOL_MAX_SIZE": "4"},
            "DB_POOL_MIN_SIZE must be between 0 and DB_POOL_MAX_SIZE",
        ),
        (
            {"DATABASE_URL": "postgres://b@h/b", "DB_POOL_TIMEOUT": "soon"},
            "DB_POOL_TIMEOUT must be a number of seconds",
        ),
    ],
)
def test_a_pool_that_cannot_work_stops_the_process_with_a_clear_message(env, message):
    # when
    result = _run(SHOW_DATABASE, DB_POOL="true", **env)

    # then
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.django_db
@pytest.mark.skipif(not on_postgres(), reason="the psycopg pool is PostgreSQL's")
def test_threads_share_the_pools_connections_on_postgres():
    # given: a pool of at most two connections, and eight threads querying
    script = (
        "import json, threading\n"
        "import django\n"
        "django.setup()\n"
        "from django.db import connection\n"
        "results = []\n"
        "def work():\n"
        "    for _ in range(5):\n"
        "        with connection.cursor() as cursor:\n"
        "            cursor.execute('SELECT pg_backend_pid()')\n"
        "            results.append(cursor.fetchone()[0])\n"
        "        connection.close()  # what the end of a request does: back to the pool\n"
        "threads = [threading.Thread(target=work) for _ in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(json.dumps({'queries': len(results), 'backends': len(set(results)),\n"
        "                  'pool_max': connection.pool.max_size}))\n"
    )

    # when
    result = _run(script, DATABASE_URL=database_url(), DB_POOL="true", DB_POOL_MAX_SIZE="2")

    # then: forty queries served by at most two server connections
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["queries"] == 40
    assert 1 <= figures["backends"] <= 2
    assert figures["pool_max"] == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not on_postgres(), reason="the psycopg pool is PostgreSQL's")
def test_a_qcluster_with_the_pool_runs_tasks_in_its_forked_workers():
    # given: a cluster whose processes use the pool (it forks its workers,
    # pusher and monitor after using the database)
    from django_q.models import Task
    from django_q.tasks import async_task

    from tests.live_server import start_manage, stop_process, wait_until

    cluster = start_manage("qcluster", Q_WORKERS="2", DB_POOL="true", DB_POOL_MAX_SIZE="2")
    try:
        # when
        for _ in range(6):
            async_task("math.floor", 1.5)
        done = wait_until(lambda: Task.objects.count() == 6, timeout=60, process=cluster)
    finally:
        output = stop_process(cluster)

    # then: every task ran, none failed, and no process shared a server session
    assert done, output
    assert Task.objects.filter(success=True).count() == 6
    assert "Traceback" not in output, output
