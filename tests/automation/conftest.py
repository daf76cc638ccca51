from __future__ import annotations

import pytest
from django_q.conf import Conf

from automation.entities import entities_sync, invalidate_watch_index
from automation.models import Entity
from automation.registry import entity_registry
from operations.models import Workspace


@pytest.fixture(autouse=True)
def _fresh_watch_index():
    """The index of watched models is per process: never let one test's rules
    (rolled back with its transaction) leak into the next test."""
    invalidate_watch_index()
    yield
    invalidate_watch_index()


@pytest.fixture(autouse=True)
def _tasks_run_inline(monkeypatch):
    """django-q2's sync mode: a task queued on commit runs at once, in this
    process, through django-q2's own worker code (no cluster needed)."""
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def entities(db):
    entities_sync()
    return {entity.model_label: entity for entity in Entity.objects.all()}


@pytest.fixture
def tenant_entity(entities):
    return entities["operations.Tenant"]


@pytest.fixture
def fast_backoff(settings):
    settings.AUTOMATION_DELIVERY_BACKOFF_SECONDS = 0
    settings.AUTOMATION_WEBHOOK_SECRET = "test-webhook-secret"
    settings.AUTOMATION_WEBHOOK_TIMEOUT_SECONDS = 5


@pytest.fixture
def workspace_slug_writable():
    """Lets rules write Workspace.slug, which operations registers as not
    writable by rules: a unique slug is the handy way to make an action fail
    at run time (and be fixed before a replay)."""
    writable = entity_registry.writable_fields("operations.Workspace")
    entity_registry.register(Workspace, writable_fields=(*writable, "slug"))
    yield
    entity_registry.register(Workspace, writable_fields=writable)


@pytest.fixture(autouse=True)
def _empty_notification_outboxes():
    """The locmem SMS and push backends keep messages in module lists, as
    django.core.mail.outbox does: every test starts with them empty."""
    from automation.backends import push, sms

    sms.outbox.clear()
    push.outbox.clear()
    yield
    sms.outbox.clear()
    push.outbox.clear()


@pytest.fixture
def inbound_secret(settings):
    """One inbound secret listed and set (AUTOMATION_INBOUND_SECRET_SHOP)."""
    from tests.automation.factories import INBOUND_SECRET, INBOUND_SECRET_SETTING

    settings.AUTOMATION_INBOUND_SECRETS = [INBOUND_SECRET_SETTING]
    setattr(settings, INBOUND_SECRET_SETTING, INBOUND_SECRET)
    return INBOUND_SECRET
