"""The production shape for real: ``check --deploy`` under the environment
the README documents, and the Procfile's ``web`` command (collectstatic, then
gunicorn with config/gunicorn.conf.py) serving static files, probes, the API
and /metrics, with DEBUG off, behind a (simulated) TLS-terminating proxy."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from tests.live_server import database_url, free_port
from tests.observability.factories import OperationRunFactory
from tests.operations.factories import MembershipFactory, UserFactory, WorkspaceFactory

# The server reads the test database; the mark also makes pytest-django set it
# up when only tests of this module run.
pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
METRICS_TOKEN = "metrics-token-for-the-production-test-0123"

# README "Production" → "Environment": the settings `check --deploy` must pass with.
DOCUMENTED_PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "n7Qx-production-test-key-Jp3v9wL2sT8yR4kZ6mB1cF5hD0gA7eU",
    "ALLOWED_HOSTS": "bureau.example.com,127.0.0.1",
    "CSRF_TRUSTED_ORIGINS": "https://bureau.example.com",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "METRICS_TOKEN": METRICS_TOKEN,
}


def _production_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "PROMETHEUS_MULTIPROC_DIR")
    }
    # `python` and `gunicorn` in the Procfile are this virtualenv's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **DOCUMENTED_PRODUCTION_ENV, **extra}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- check --deploy ---------------------------------------------------------------------------
def test_check_deploy_is_clean_under_the_documented_production_environment(tmp_path):
    # given: the documented environment (a database URL is needed to load settings)
    env = _production_env(DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}")

    # when
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_without_the_https_settings(tmp_path):
    # given: the documented environment minus HSTS and the redirect
    env = _production_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
    )

    # when
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    # then: the release step would stop here
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


# --- gunicorn ---------------------------------------------------------------------------------
def _procfile_command(role: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{role}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {role} role in the Procfile")


@pytest.fixture(scope="module")
def production_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """The Procfile's web command against the test database: collectstatic
    into a fresh STATIC_ROOT, then gunicorn with two worker processes."""
    with django_db_blocker.unblock():
        url = database_url()
    assert "test" in url.rsplit("/", 1)[-1], f"not a test database: {url}"
    port = free_port()
    work = tmp_path_factory.mktemp("production")
    env = _production_env(
        DATABASE_URL=url,
        STATIC_ROOT=str(work / "static"),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="2",
        PROMETHEUS_MULTIPROC_DIR=str(work / "prometheus"),
    )
    log = (work / "web.log").open("w+")
    process = subprocess.Popen(
        ["sh", "-c", _procfile_command("web")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_it_answers(process, f"{base}/healthz", log_path=Path(log.name))
        yield base, work
    finally:
        process.terminate()  # `exec gunicorn`: this pid is the gunicorn master
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        print(Path(log.name).read_text())  # shown by pytest when a test failed


def _wait_until_it_answers(process: subprocess.Popen, url: str, *, log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, f"web role exited: {log_path.read_text()}"
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # still collecting static files, or a worker still importing Django
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.25)


HTTPS = {"X-Forwarded-Proto": "https"}  # what the TLS-terminating proxy adds


def _session_of(user) -> str:
    """A signed-in session for ``user`` in the database the server reads, as
    the admin's login would leave it."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import override_settings

    # Signed with the server's key, not the test run's: the session hash and
    # the session data are both HMACs of SECRET_KEY.
    with override_settings(SECRET_KEY=DOCUMENTED_PRODUCTION_ENV["SECRET_KEY"]):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
    return session.session_key


def test_the_web_role_serves_collected_static_files(production_server):
    base, _work = production_server

    # when: the admin's stylesheet, and the Swagger UI bundle the docs page
    # names (the docs need a signed-in session)
    css = requests.get(f"{base}/static/admin/css/base.css", headers=HTTPS, timeout=10)
    docs = requests.get(
        f"{base}/api/v1/docs/",
        headers=HTTPS,
        cookies={"sessionid": _session_of(UserFactory())},
        timeout=10,
    )
    bundle_path = re.search(r'src="(/static/[^"]*swagger-ui-bundle\.[0-9a-f]{12}\.js)"', docs.text)

    # then
    assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]
    assert docs.status_code == 200, docs.text[:500]
    assert bundle_path, docs.text[:2000]
    bundle = requests.get(base + bundle_path.group(1), headers=HTTPS, timeout=10)
    assert bundle.status_code == 200
    assert "immutable" in bundle.headers["Cache-Control"]  # hashed name: cached for good


def test_the_web_role_serves_the_api_over_https_only(production_server):
    base, _work = production_server
    # given: a user with a token and a run in their workspace
    user = UserFactory()
    workspace = WorkspaceFactory()
    MembershipFactory(workspace=workspace, user=user)
    OperationRunFactory(workspace=workspace)
    auth = {"Authorization": f"Token {Token.objects.create(user=user).key}"}

    # when
    over_https = requests.get(
        f"{base}/api/v1/operations/runs/", headers={**auth, **HTTPS}, timeout=10
    )
    over_http = requests.get(
        f"{base}/api/v1/operations/runs/", headers=auth, timeout=10, allow_redirects=False
    )

    # then
    assert over_https.status_code == 200, over_https.text
    assert over_https.json()["count"] == 1
    assert over_https.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )
    assert re.fullmatch(r"[0-9a-f]{32}", over_https.headers["X-Request-ID"])
    assert over_http.status_code == 301
    assert over_http.headers["Location"].startswith("https://")


def test_probes_answer_over_plain_http(production_server):
    base, _work = production_server

    # when: a load balancer probes the instance directly, without the proxy's header
    alive = requests.get(f"{base}/healthz", timeout=10, allow_redirects=False)
    ready = requests.get(f"{base}/readyz", timeout=10, allow_redirects=False)

    # then: answered, not redirected (no cluster runs here, so not ready)
    assert alive.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"] == {
        "database": "up",
        "migrations": "applied",
        "cluster": "silent",
    }


def test_metrics_add_up_the_requests_of_every_worker_process(production_server):
    base, work = production_server
    scrape_headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}

    def healthz_count() -> float:
        response = requests.get(f"{base}/metrics", headers=scrape_headers, timeout=10)
        assert response.status_code == 200, response.text
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == "bureau_http_requests_total" and sample.labels == {
                    "view": "healthz",
                    "method": "GET",
                    "status": "200",
                }:
                    return sample.value
        return 0.0

    # given
    before = healthz_count()

    # when: 30 requests, each on its own connection, so both workers serve some
    for _ in range(30):
        with requests.Session() as session:
            assert session.get(f"{base}/healthz", timeout=10).status_code == 200

    # then: every scrape, whichever worker answers it, sees all 30
    assert [healthz_count() for _ in range(4)] == [before + 30] * 4
    pids = {
        int(m.group(1))
        for f in (work / "prometheus").iterdir()
        if (m := re.match(r"counter_(\d+)\.db$", f.name))
    }
    assert len(pids) == 2, pids  # both workers counted requests
    # and the endpoint is closed to anyone without the token
    assert requests.get(f"{base}/metrics", timeout=10).status_code == 403


def test_the_procfile_names_the_three_roles_and_the_release_step():
    # given
    roles = {
        line.split(":", 1)[0]: line.split(":", 1)[1].strip()
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line and not line.startswith("#")
    }

    # then
    assert set(roles) == {"release", "web", "worker", "scanner-agent"}
    assert "gunicorn --config config/gunicorn.conf.py config.wsgi" in roles["web"]
    assert shlex.split(roles["worker"])[-2:] == ["manage.py", "qcluster"]
    assert "manage.py scan_agent" in roles["scanner-agent"]
    for step in ("migrate --noinput", "sync_schedules", "check --deploy"):
        assert step in roles["release"]


def test_gunicorn_config_gives_the_workers_a_fresh_shared_metrics_directory():
    # given: no PROMETHEUS_MULTIPROC_DIR in the environment
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    script = (
        "import os, runpy\n"
        "conf = runpy.run_path('config/gunicorn.conf.py')\n"
        "directory = os.environ['PROMETHEUS_MULTIPROC_DIR']\n"
        "open(os.path.join(directory, 'counter_1.db'), 'w').close()\n"
        "conf['on_starting'](None)\n"
        "print(directory, os.path.isdir(directory), os.listdir(directory))\n"
    )

    # when: gunicorn reads its config, then starts
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )

    # then: a directory was made for the workers, and a start empties it
    assert result.returncode == 0, result.stderr
    directory, exists, entries = result.stdout.split(" ", 2)
    assert exists == "True" and entries.strip() == "[]"
    assert Path(directory).name.startswith("bureau-prometheus-")
    Path(directory).rmdir()
