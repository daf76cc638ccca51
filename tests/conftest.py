from __future__ import annotations

import shutil

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from operations.catalog import operation_catalog
from operations.choices import MemberRole, RunScope
from tests import watched_writes
from tests.live_server import start_manage, stop_process
from tests.operations.factories import MembershipFactory, UserFactory, WorkspaceFactory


@pytest.fixture(scope="session", autouse=True)
def _remove_test_media():
    """MEDIA_ROOT is per test run (config.test_settings); leave nothing behind."""
    yield
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _watched_writes_guard():
    """Automation sees a change to a model it watches only through save():
    app code that writes one otherwise fails the test (tests/watched_writes.py)."""
    with watched_writes.installed() as guard:
        yield guard


@pytest.fixture(autouse=True)
def _no_write_around_save(_watched_writes_guard):
    with watched_writes.recording() as seen:
        yield
    if seen:
        pytest.fail(
            "app code wrote a model automation watches without save():\n" + "\n".join(seen),
            pytrace=False,
        )


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def qcluster():
    """A real ``manage.py qcluster`` (one worker) on this run's test database.
    Tests that use it need ``django_db(transaction=True)``: the cluster is
    another process and sees only committed rows."""
    process = start_manage("qcluster", Q_WORKERS="1")
    yield process
    print(stop_process(process))  # shown by pytest when the test failed


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def workspace(db, user):
    """A workspace ``user`` is an operator of."""
    workspace = WorkspaceFactory()
    MembershipFactory(workspace=workspace, user=user, role=MemberRole.OPERATOR)
    return workspace


@pytest.fixture
def root(db):
    """A superuser called root: the operator of the console tests."""
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, root):
    """Django's test client logged in as ``root`` (pytest-django's own
    ``admin_client``, replaced so the console tests share one operator)."""
    client.force_login(root)
    return client


@pytest.fixture
def user_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def test_operation_types():
    """Two operation types with small, known limits, registered for one test."""
    tenant_type = operation_catalog.register(
        "test.tenant_job",
        label="Test tenant job",
        scope=RunScope.TENANT,
        summary_keys=("processed", "failed"),
        identity_inputs=("batch",),
    )
    workspace_type = operation_catalog.register(
        "test.workspace_job",
        label="Test workspace job",
        scope=RunScope.WORKSPACE,
        summary_keys=("processed", "failed"),
    )
    yield tenant_type, workspace_type
    operation_catalog.unregister("test.tenant_job")
    operation_catalog.unregister("test.workspace_job")
