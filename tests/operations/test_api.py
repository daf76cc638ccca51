import json

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.urls import reverse

from operations.choices import RunOutcome, RunStatus
from tests.operations.factories import (
    OperationRunFactory,
    TenantFactory,
    UserFactory,
    WorkspaceFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_operation_types")]

RUNS_URL = "/api/v1/operations/runs/"


def test_anonymous_requests_get_401(api_client):
    response = api_client.get(RUNS_URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


def test_members_see_only_their_workspaces_runs_newest_first(user_client, workspace):
    mine_old = OperationRunFactory(workspace=workspace)
    mine_new = OperationRunFactory(workspace=workspace)
    OperationRunFactory(workspace=WorkspaceFactory())

    response = user_client.get(RUNS_URL)

    assert response.status_code == 200
    assert response.data["count"] == 2
    assert [r["id"] for r in response.data["results"]] == [mine_new.pk, mine_old.pk]
    first = response.data["results"][0]
    assert first["workspace"]["slug"] == workspace.slug
    assert first["type_label"] == "Test workspace job"


def test_another_workspaces_run_is_a_404(user_client, workspace):
    theirs = OperationRunFactory(workspace=WorkspaceFactory())

    response = user_client.get(f"{RUNS_URL}{theirs.pk}/")

    assert response.status_code == 404
    assert response.data == {"code": "not_found", "detail": "Not found."}


def test_a_run_in_my_workspace_has_its_detail(user_client, workspace):
    run = OperationRunFactory(
        workspace=workspace,
        status=RunStatus.COMPLETED,
        outcome=RunOutcome.PARTIALLY_SUCCEEDED,
        started_at="2026-11-01T10:00:00Z",
        completed_at="2026-11-01T10:00:02.500Z",
        summary_counts={"processed": 4},
        failure_summary=[{"code": "item.bad", "message": "row 2"}],
    )

    response = user_client.get(f"{RUNS_URL}{run.pk}/")

    assert response.status_code == 200
    assert response.data["outcome"] == "partially_succeeded"
    assert response.data["duration_seconds"] == 2.5
    assert response.data["failure_summary"] == [{"code": "item.bad", "message": "row 2"}]


def test_superusers_see_every_workspace(api_client):
    api_client.force_authenticate(UserFactory(is_superuser=True, is_staff=True))
    OperationRunFactory(workspace=WorkspaceFactory())
    OperationRunFactory(workspace=WorkspaceFactory())

    assert api_client.get(RUNS_URL).data["count"] == 2


@pytest.mark.parametrize(
    "query, expected",
    [
        ("type=test.tenant_job", {"tenant_a", "tenant_b"}),
        ("status=running", {"running"}),
        ("outcome=failed", {"failed"}),
        ("tenant={tenant_a}", {"tenant_a"}),
        ("tenant_external_id={tenant_a_ext}", {"tenant_a"}),
        ("workspace={workspace}", {"tenant_a", "tenant_b", "running", "failed"}),
        ("status=queued&type=test.tenant_job", {"tenant_a", "tenant_b"}),
    ],
)
def test_filters(user_client, workspace, query, expected):
    tenant_a = TenantFactory(workspace=workspace)
    tenant_b = TenantFactory(workspace=workspace)
    runs = {
        "tenant_a": OperationRunFactory(
            workspace=workspace, tenant=tenant_a, type="test.tenant_job"
        ),
        "tenant_b": OperationRunFactory(
            workspace=workspace, tenant=tenant_b, type="test.tenant_job"
        ),
        "running": OperationRunFactory(workspace=workspace, status=RunStatus.RUNNING),
        "failed": OperationRunFactory(
            workspace=workspace,
            status=RunStatus.COMPLETED,
            outcome=RunOutcome.FAILED,
            completed_at="2026-11-01T00:00:00Z",
        ),
    }
    names = {run.pk: name for name, run in runs.items()}
    query = query.format(
        tenant_a=tenant_a.pk, tenant_a_ext=tenant_a.external_id, workspace=workspace.pk
    )

    response = user_client.get(f"{RUNS_URL}?{query}")

    assert response.status_code == 200, response.data
    assert {names[r["id"]] for r in response.data["results"]} == expected


@pytest.mark.parametrize(
    "query, field",
    [
        ("status=exploded", "status"),
        ("outcome=maybe", "outcome"),
        ("type=nope.nothing", "type"),
        ("tenant=abc", "tenant"),
        ("workspace=-1", "workspace"),
        ("tenant_external_id=not-a-uuid", "tenant_external_id"),
    ],
)
def test_bad_filter_values_are_a_400_naming_the_field(user_client, workspace, query, field):
    response = user_client.get(f"{RUNS_URL}?{query}")

    assert response.status_code == 400
    assert field in response.data


def test_pagination(user_client, workspace):
    for _ in range(3):
        OperationRunFactory(workspace=workspace)

    response = user_client.get(f"{RUNS_URL}?page_size=2")

    assert response.data["count"] == 3
    assert len(response.data["results"]) == 2
    assert response.data["next"] is not None
    assert user_client.get(f"{RUNS_URL}?page=9").status_code == 404


def test_token_for_username_and_password(api_client, workspace, user):
    response = api_client.post(
        "/api/v1/auth/token/",
        {"username": user.username, "password": "correct horse battery staple"},
    )
    assert response.status_code == 200
    token = response.data["token"]

    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_client.get(RUNS_URL).status_code == 200


def test_a_wrong_password_gets_no_token(api_client, user):
    response = api_client.post(
        "/api/v1/auth/token/", {"username": user.username, "password": "nope"}
    )

    assert response.status_code == 400
    assert "token" not in response.data


def test_the_openapi_schema_is_served_and_valid(user_client, tmp_path):
    response = user_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/operations/runs/" in schema["paths"]
    # drf-spectacular validates against the OpenAPI 3 JSON schema; warnings fail.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))


def test_the_docs_page_uses_bundled_assets(client, user):
    client.force_login(user)

    response = client.get("/api/v1/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()


def test_healthz_is_200_when_the_database_answers(client):
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "up"}


def test_healthz_is_503_when_the_database_does_not(client, monkeypatch):
    # Mocked: taking the test database down under a running test has no safe
    # local stand-in, so the cursor is made to fail as a dead server's would.
    def broken_cursor(*args, **kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "down"}
