from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from rest_framework.test import APIClient

from scanning import services
from scanning.agents import scan_agent_create
from tests.operations.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated_media(request, settings, tmp_path):
    """Each test stores files in its own MEDIA_ROOT, so "nothing stored" can
    be checked. Modules that share files with a subprocess (which reads
    config.test_settings' MEDIA_ROOT) set ``SHARED_MEDIA = True``."""
    if not getattr(request.module, "SHARED_MEDIA", False):
        settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def agent(db):
    """An agent credential: ``agent.agent`` is the row, ``agent.token`` the secret."""
    return scan_agent_create(name="scanner-host")


@pytest.fixture
def agent_client(agent) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {agent.token}")
    return client


@pytest.fixture
def operator(db):
    """Operates the scanner and reads the inbox it fills."""
    user = UserFactory(username="operator")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["operate_scanner", "view_document"])
    )
    return user


@pytest.fixture
def operator_client(operator) -> APIClient:
    client = APIClient()
    client.force_authenticate(operator)
    return client


@pytest.fixture
def heartbeat(agent):
    """Report the agent alive now."""
    return lambda: services.scan_agent_heartbeat(agent=agent.agent, version="test")


def test_database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def subprocess_env(**extra) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": test_database_url(),
        **extra,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_manage(*args: str, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=subprocess_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_process(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.terminate()
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output or ""


def wait_until(predicate, timeout: float, interval: float = 0.2, process=None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return bool(predicate())
        if predicate():
            return True
        time.sleep(interval)
    return False
