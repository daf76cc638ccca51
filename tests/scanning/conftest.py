from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from scanning import services
from scanning.services import scan_agent_create
from tests.operations.factories import UserFactory


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
