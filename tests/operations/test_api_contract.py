"""The API's project-wide contract (issue 8, items 9, 11, 12): no 500 from
input, JSON ``{code, detail}`` errors whatever goes wrong, a throttled token
endpoint, and authentication on the schema and docs. On both databases."""

import json

import pytest
from django.db import connection
from django.test import RequestFactory
from rest_framework.test import APIClient

from approvals.models import PendingAction
from automation.models import AutomationRule
from config.http import server_error
from scanning.models import ScanJob
from tests.operations.factories import UserFactory

pytestmark = pytest.mark.django_db

NUL_MESSAGE = "The NUL character (\\u0000) is not allowed."
TOKEN_URL = "/api/v1/auth/token/"
# Signed by the sender, no user token (issue 13): a 401 for a bad signature, never a 403.
INBOUND_URL = "/api/v1/automation/inbound/{source}/"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def root_client():
    client = APIClient()
    client.force_authenticate(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def _post_json(client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


# --- item 9: a NUL character anywhere in a body is a 400 naming where -------------------


def test_a_nul_in_an_approval_payload_key_is_a_400_naming_it(root_client):
    body = {
        "action_type": "operations.create_tenant",
        "payload": {"workspace": "acme", "na\u0000me": "Initech"},
        "title": "Create tenant Initech",
        "template_name": "New tenant",
        "variables": {"tenant_name": "Initech", "workspace": "acme"},
        "approvers": ["EP-BOSS-1"],
    }

    response = _post_json(root_client, "/api/v1/approvals/requests/", body)

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": f"payload.na\\u0000me: {NUL_MESSAGE}",
        "payload.na\\u0000me": [NUL_MESSAGE],
    }
    assert not PendingAction.objects.exists()


def test_a_nul_in_a_template_variable_is_a_400_naming_it(root_client):
    body = {
        "action_type": "operations.create_tenant",
        "payload": {"workspace": "acme", "name": "Initech"},
        "title": "Create tenant Initech",
        "template_name": "New tenant",
        "variables": {"tenant_name": "Init\u0000ech", "workspace": "acme"},
        "approvers": ["EP-BOSS-1"],
    }

    response = _post_json(root_client, "/api/v1/approvals/requests/", body)

    assert response.status_code == 400
    assert response.json()["variables.tenant_name"] == [NUL_MESSAGE]


def test_a_nul_in_a_rule_condition_value_and_action_config_is_a_400_naming_both(root_client):
    body = {
        "name": "Tenant renamed",
        "entity": "operations_tenant",
        "trigger_type": "on_update",
        "trigger_conditions": {
            "field_conditions": [
                {"field_name": "name", "operator": "changed_to", "value": "Ac\u0000me"}
            ]
        },
        "actions": [
            {
                "name": "alert",
                "action_type": "create_alert",
                "execution_order": 1,
                "action_config": {"title": "{{name}}\u0000", "message": "renamed"},
            }
        ],
    }

    response = _post_json(root_client, "/api/v1/automation/rules/", body)

    assert response.status_code == 400
    errors = response.json()
    assert errors["trigger_conditions.field_conditions[0].value"] == [NUL_MESSAGE]
    assert errors["actions[0].action_config.title"] == [NUL_MESSAGE]
    assert not AutomationRule.objects.exists()


@pytest.mark.parametrize("format", ["json", "multipart"])
def test_a_nul_in_a_scan_job_title_is_a_400_in_json_and_in_a_form(root_client, format):
    response = root_client.post(
        "/api/v1/scanning/jobs/", {"title": "Contracts\u00002026"}, format=format
    )

    assert response.status_code == 400
    assert response.json()["title"] == [NUL_MESSAGE]
    assert not ScanJob.objects.exists()


def test_a_nul_in_a_query_parameter_is_a_400_naming_it(root_client):
    response = root_client.get("/api/v1/scanning/jobs/?status=que%00ued&title=ok")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["status"] == [NUL_MESSAGE]


def test_a_nul_in_the_login_form_is_a_400_not_a_500(api_client):
    response = api_client.post(TOKEN_URL, {"username": "ad\u0000min", "password": "x"})

    assert response.status_code == 400
    assert response.json()["username"] == [NUL_MESSAGE]


# --- item 12: malformed and oversized requests get JSON errors -----------------------------


def test_malformed_json_is_a_400_with_code_and_detail(root_client):
    response = root_client.post(
        "/api/v1/scanning/jobs/", '{"title": "x"', content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert response.json()["detail"].startswith("JSON parse error")


def test_a_50_mb_body_is_a_413_json_answer_before_anything_reads_it(root_client):
    body = b'{"title": "' + b"x" * (50 * 1024 * 1024) + b'"}'

    response = root_client.generic(
        "POST", "/api/v1/scanning/jobs/", body, content_type="application/json"
    )

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "code": "request_too_large",
        "detail": f"The request body is {len(body)} bytes; the limit is 2621440 bytes.",
    }
    assert not ScanJob.objects.exists()


def test_an_oversized_form_field_in_a_multipart_body_is_a_413(root_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = root_client.post("/api/v1/scanning/jobs/", {"title": "x" * 5000}, format="multipart")

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


def test_validation_errors_carry_code_and_detail_beside_the_field_errors(root_client):
    response = _post_json(root_client, "/api/v1/scanning/jobs/", {"title": ""})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["detail"].startswith("title: ")
    assert isinstance(body["title"], list)


def test_an_unknown_api_path_is_a_json_404_and_an_unknown_admin_path_is_html(client):
    api = client.get("/api/v1/no-such-thing/")
    admin = client.get("/no-such-page/")

    assert api.status_code == 404
    assert api.json() == {"code": "not_found", "detail": "Not found."}
    assert admin.status_code == 404
    assert "text/html" in admin["Content-Type"]


def test_a_server_error_under_the_api_is_json():
    request = RequestFactory().get("/api/v1/operations/runs/")

    response = server_error(request)

    assert response.status_code == 500
    assert json.loads(response.content) == {
        "code": "server_error",
        "detail": "Something went wrong on our side.",
    }


def test_unauthenticated_and_forbidden_answers_have_code_and_detail(api_client, user_client):
    anonymous = api_client.get("/api/v1/operations/runs/")
    forbidden = user_client.post("/api/v1/scanning/jobs/", {"title": "x"}, format="json")

    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "scanning.permission_denied"
    assert "operate scanner" in forbidden.json()["detail"]


# --- item 11: the token endpoint is throttled per username and address -------------------


def _login(client, username: str, password: str, address: str = "10.0.0.1", **headers):
    return client.post(
        TOKEN_URL, {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


def test_repeated_wrong_passwords_get_429_with_retry_after_and_other_users_still_log_in(
    api_client,
):
    # given: two users
    UserFactory(username="alice")
    UserFactory(username="bob")

    # when: someone guesses alice's password ten times from one address
    guesses = [_login(api_client, "alice", f"guess-{n}").status_code for n in range(10)]
    blocked = _login(api_client, "alice", PASSWORD)
    spoofed = _login(api_client, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="10.9.9.9")

    # then: the eleventh try is a 429 with Retry-After, even with the right password
    # or a forged X-Forwarded-For (no proxy is trusted by default)
    assert guesses == [400] * 10
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0
    assert blocked.json()["code"] == "throttled"
    assert spoofed.status_code == 429
    # and: bob from the same address, and alice from elsewhere, are not locked out
    assert _login(api_client, "bob", PASSWORD).status_code == 200
    assert _login(api_client, "alice", PASSWORD, address="10.0.0.2").status_code == 200


def test_the_throttle_counts_live_in_the_database_shared_by_every_worker(api_client):
    UserFactory(username="alice")

    _login(api_client, "alice", "wrong")

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM bureau_cache")
        assert cursor.fetchone()[0] == 1


def test_a_stale_token_header_does_not_block_logging_in(api_client):
    UserFactory(username="alice")
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = _login(api_client, "alice", PASSWORD)

    assert response.status_code == 200
    assert "token" in response.json()


# --- item 11: the schema and the docs need a signed-in user ------------------------------


def test_the_schema_needs_authentication(api_client, user_client):
    anonymous = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    signed_in = user_client.get("/api/v1/schema/")

    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"
    assert signed_in.status_code == 200


def test_the_docs_page_sends_a_browser_without_a_session_to_the_login_page(client):
    anonymous = client.get("/api/v1/docs/")
    client.force_login(UserFactory())
    signed_in = client.get("/api/v1/docs/")

    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/admin/login/?next=/api/v1/docs/"
    assert signed_in.status_code == 200


# --- item 10: the schema declares the error answers ------------------------------------------


def test_every_operation_declares_its_error_answers_with_the_error_shape(user_client):
    schema = user_client.get(
        "/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    ).json()

    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "detail"]
    assert set(error["properties"]) == {"code", "detail", "current_state"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "400" in responses, (method, path)
            if path == INBOUND_URL:
                assert "401" in responses, (method, path)
            elif path != TOKEN_URL:
                assert {"401", "403"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            if method in ("post", "put", "patch", "delete") and path != TOKEN_URL:
                assert "409" in responses, (method, path)
    token = schema["paths"][TOKEN_URL]["post"]["responses"]
    assert {"400", "429"} <= set(token)
    knox = schema["paths"]["/api/v1/approvals/requests/"]["post"]["responses"]
    assert {"502", "503"} <= set(knox)
    assert knox["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
