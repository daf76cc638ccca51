"""The migration that adds the payload hash fills it in for actions requested
before it, so they still run when Knox approves them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from approvals.services import payload_sha256

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("approvals", "0001_initial")]
AFTER = [("approvals", "0002_default_approval_line_payload_hash_failure_code")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def _latest_schema_afterwards():
    """Migrating back to 0001 unapplies every later approvals migration: apply
    them all again, or the rest of the session runs on an old schema (and
    /readyz there says migrations are pending)."""
    yield
    executor = MigrationExecutor(connection)
    _migrate(executor.loader.graph.leaf_nodes())


def test_actions_requested_before_the_migration_get_their_payload_hash():
    # given: an action written by the schema before the migration
    old = _migrate(BEFORE)
    log = old.get_model("approvals", "ApprovalLog").objects.create(
        ap_inf_id="a" * 32, subject="Old", contents="<p>old</p>", contents_sha256="0" * 64
    )
    payload = {"workspace": "acme", "name": "Initech", "n": 1e20}
    old.get_model("approvals", "PendingAction").objects.create(
        ap_inf_id="a" * 32, approval_log_id=log.pk, action_type="x", action_payload=payload
    )

    # when
    new = _migrate(AFTER)

    # then: the hash is the one execution computes from the stored payload
    action = new.get_model("approvals", "PendingAction").objects.get()
    log = new.get_model("approvals", "ApprovalLog").objects.get()
    assert log.payload_sha256 == payload_sha256(action.action_payload)
