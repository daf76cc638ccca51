"""Events come only from post_save / post_delete, so a service that writes a
watched model around save() would leave rules blind to the change. The guard
in tests/watched_writes.py (active in every test) fails the test in which
app code does that; here it is shown catching each such write, and letting
save(), deletes and tests' own writes through."""

from __future__ import annotations

import pytest

from config.db import update_rows
from operations.models import Tenant, Workspace
from tests import watched_writes
from tests.operations.factories import TenantFactory

pytestmark = pytest.mark.django_db


def _app_code(source: str):
    """``source`` compiled as if it were a module of the operations app (as a
    service would be), with the names it needs."""
    namespace = {
        "__name__": "operations.example_service",
        "Tenant": Tenant,
        "Workspace": Workspace,
        "update_rows": update_rows,
    }
    exec(compile(source, "operations/example_service.py", "exec"), namespace)  # noqa: S102
    return namespace["write"]


@pytest.mark.parametrize(
    ("source", "table"),
    [
        (
            "def write(tenant):\n    Tenant.objects.filter(pk=tenant.pk).update(name='renamed')\n",
            "operations_tenant",
        ),
        (
            "def write(tenant):\n"
            "    Tenant.objects.bulk_create([Tenant(workspace=tenant.workspace, name='more')])\n",
            "operations_tenant",
        ),
        (
            "def write(tenant):\n"
            "    tenant.name = 'renamed'\n"
            "    Tenant.objects.bulk_update([tenant], ['name'])\n",
            "operations_tenant",
        ),
        (
            "def write(tenant):\n"  # config.db's UPDATE, as transition_if and batches use
            "    tenant.name = 'renamed'\n"
            "    update_rows([tenant], ['name'])\n",
            "operations_tenant",
        ),
        (
            "def write(tenant):\n"
            "    Workspace.objects.filter(pk=tenant.workspace_id).update(name='renamed')\n",
            "operations_workspace",
        ),
    ],
    ids=["update", "bulk_create", "bulk_update", "config.db", "related model"],
)
def test_app_code_writing_a_watched_model_around_save_is_caught(source, table):
    # given: a watched model's row, and app code that writes it without save()
    tenant = TenantFactory()
    write = _app_code(source)

    # when
    with watched_writes.recording() as seen:
        write(tenant)

    # then: the write is recorded with who made it (the test would fail)
    assert len(seen) == 1
    assert seen[0].startswith("operations.example_service.write:")
    assert f"wrote {table} without save()" in seen[0]


def test_save_deletes_and_tests_own_writes_pass():
    tenant = TenantFactory()
    save = _app_code("def write(tenant):\n    tenant.name = 'saved'\n    tenant.save()\n")
    delete = _app_code("def write(tenant):\n    tenant.delete()\n")

    with watched_writes.recording() as seen:
        save(tenant)
        Tenant.objects.filter(pk=tenant.pk).update(name="set up by the test")
        delete(tenant)

    assert seen == []


def test_every_model_the_apps_registered_is_guarded():
    assert {
        "operations_tenant",
        "operations_workspace",
        "scanning_scanjob",
        "approvals_pendingaction",
    } <= watched_writes.watched_tables()
