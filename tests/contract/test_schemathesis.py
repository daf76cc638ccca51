"""The API keeps the promises of its OpenAPI schema (issue 8, item 10).

Schemathesis generates requests from the schema the server itself serves and
sends them to a real server (``manage.py runserver`` on a free port, against
the test database of this run, with the Knox simulator behind it), as a
superuser, as a plain workspace member and as the scan agent. It fails on any
5xx, any answer whose body does not match the schema, any status the
operation does not declare, and any undeclared content type. Examples are
bounded (``SCHEMATHESIS_MAX_EXAMPLES``) so one database takes a few minutes.

The ids in paths are drawn mostly from the rows seeded here (a schemathesis
dictionary per resource), so the answers of real objects are checked too,
not only 404s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.core.cache import caches
from django.core.management import call_command
from django_q.conf import Conf
from rest_framework.authtoken.models import Token

from approvals.knox.launcher import start_simulator, stop_simulator
from approvals.models import PendingAction
from approvals.services import approval_request, knox_profile_set
from automation.entities import entities_sync, invalidate_watch_index
from automation.models import Alert, AutomationExecution, AutomationRule, NotificationDelivery
from operations.choices import MemberRole
from operations.models import OperationRun, Tenant, Workspace
from scanning.models import Document, ScanJob, ScanJobBatch
from scanning.services import scan_agent_create
from tests.automation.factories import alert_action, make_rule
from tests.live_server import free_port, start_manage, stop_process, wait_for_http
from tests.operations.factories import MembershipFactory, UserFactory
from tests.scanning.factories import DocumentFactory, ScanJobFactory

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10"))
WORKERS = os.environ.get("SCHEMATHESIS_WORKERS", "2")
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "response_schema_conformance",
        "content_type_conformance",
    ]
)
AGENT_PATHS = r"^/api/v1/scanning/agent/"
ST = Path(sys.executable).parent / "st"

# Which seeded rows a path's ids are drawn from.
RESOURCES = {
    "runs": r"^/api/v1/operations/runs/\{id\}",
    "pending_actions": r"^/api/v1/approvals/pending-actions/\{id\}",
    "rules": r"^/api/v1/automation/rules/\{id\}",
    "executions": r"^/api/v1/automation/executions/\{id\}",
    "deliveries": r"^/api/v1/automation/deliveries/\{id\}",
    "alerts": r"^/api/v1/alerts/\{alert_id\}",
    "jobs": r"^/api/v1/scanning/(agent/)?jobs/\{id\}",
    "batches": r"^/api/v1/scanning/batches/\{id\}",
    "documents": r"^/api/v1/scanning/documents/\{id\}",
}


@pytest.fixture
def knox(tmp_path):
    simulator = start_simulator(tmp_path / "knox.json", "--auto-approve-after", "3600")
    yield simulator
    stop_simulator(simulator)


@pytest.fixture
def seeded(knox, settings, monkeypatch, tmp_path):
    """A small world with a row of every resource, and a token per caller."""
    settings.KNOX_BASE_URL = knox.url
    monkeypatch.setattr(Conf, "SYNC", True)  # automation's outbox runs inline here
    call_command("seed_demo", verbosity=0)
    entities_sync()
    invalidate_watch_index()
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    member = UserFactory(username="member")
    demo = Workspace.objects.get(slug="demo")
    MembershipFactory(workspace=demo, user=admin, role=MemberRole.ADMIN)
    MembershipFactory(workspace=demo, user=member, role=MemberRole.OPERATOR)
    knox_profile_set(user=admin, ep_id="EP-ROOT")
    knox_profile_set(user=member, ep_id="EP-MEMBER")
    for user in (admin, member):
        approval_request(
            action_type="operations.create_tenant",
            payload={"workspace": "demo", "name": f"Tenant of {user.username}"},
            title=f"Tenant of {user.username}",
            template_name="New tenant",
            variables={"tenant_name": "x", "workspace": "demo", "details": "<p>seed</p>"},
            approvers=["EP-BOSS-1"],
            user=user,
        )
    make_rule(
        actor=admin,
        name="Tenant renamed",
        actions=[alert_action(recipients={"users": [admin.pk, member.pk]})],
    )
    tenant = Tenant.objects.filter(workspace=demo).first()
    tenant.name = "Acme Holdings"
    tenant.save()
    ScanJobFactory(title="Draft scan")
    ScanJobFactory(title="Queued scan", status="queued", queued_at="2026-01-01T00:00:00Z")
    DocumentFactory()
    agent = scan_agent_create(name="contract-agent")
    ids = {
        "runs": OperationRun.objects.values_list("pk", flat=True),
        "pending_actions": PendingAction.objects.values_list("pk", flat=True),
        "rules": AutomationRule.objects.values_list("pk", flat=True),
        "executions": AutomationExecution.objects.values_list("pk", flat=True),
        "deliveries": NotificationDelivery.objects.values_list("pk", flat=True),
        "alerts": Alert.objects.values_list("pk", flat=True),
        "jobs": ScanJob.objects.values_list("pk", flat=True),
        "batches": ScanJobBatch.objects.values_list("pk", flat=True),
        "documents": Document.objects.values_list("pk", flat=True),
    }
    yield {
        "tokens": {
            "superuser": f"Token {Token.objects.create(user=admin).key}",
            "member": f"Token {Token.objects.create(user=member).key}",
            "agent": f"Bearer {agent.token}",
        },
        "ids": {name: sorted(values) for name, values in ids.items()},
        "knox_url": knox.url,
    }
    caches["throttle"].clear()  # a table migrate made, which the test flush leaves alone


@pytest.fixture
def server(seeded, tmp_path):
    """``runserver`` on the test database; its log is printed when the test fails."""
    port = free_port()
    log = tmp_path / "server.log"
    process = start_manage(
        "runserver",
        f"127.0.0.1:{port}",
        "--noreload",
        log=log,
        DEBUG="false",
        DB_CONN_MAX_AGE="0",
        KNOX_BASE_URL=seeded["knox_url"],
        KNOX_READ_TIMEOUT="2",
        KNOX_STATUS_RETRIES="0",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", process=process, timeout=60)
        yield url
    finally:
        stop_process(process)
        # Errors and tracebacks (not the access log, not every 4xx), shown on failure.
        lines = [
            line
            for line in log.read_text().splitlines()
            if not line.startswith("[") and "WARNING django.request" not in line
        ]
        print("\n".join(lines[-400:]))


def _config(tmp_path: Path, ids: dict[str, list[int]]) -> Path:
    # No state kept between runs (a crash cache would replay old failures first).
    lines = ["[cache]", "enabled = false", "", "[dictionaries]"]
    for name, values in ids.items():
        lines.append(f"{name} = {{ values = {json.dumps(values or [1])} }}")
    for name, regex in RESOURCES.items():
        parameter = "path.alert_id" if name == "alerts" else "path.id"
        lines += [
            "",
            "[[operations]]",
            f"include-path-regex = {json.dumps(regex)}",
            f'parameters = {{ "{parameter}" = {{ dictionary = "{name}", probability = 0.8 }} }}',
        ]
    config = tmp_path / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def _schemathesis(
    server: str,
    token: str,
    config: Path,
    schema: Path,
    log: Path,
    phases: str,
    examples: int,
    *filters: str,
) -> subprocess.CompletedProcess:
    command = [
        str(ST),
        "--config-file",
        str(config),
        "run",
        str(schema),
        "--url",
        server,
        "--header",
        f"Authorization: {token}",
        "--checks",
        CHECKS,
        "--phases",
        phases,
        "--max-examples",
        str(examples),
        "--seed",
        "8",
        "--workers",
        WORKERS,
        "--request-timeout",
        "20",
        "--generation-database",
        "none",
        "--no-color",
        *filters,
    ]
    with log.open("w") as out:
        return subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, timeout=900, cwd=log.parent
        )


# (caller, phases, max examples per operation): the superuser reaches every
# answer, so it gets the exhaustive coverage phase; the member mostly meets
# 403/404s, which the fuzzing phase checks enough; the agent's API is small.
PASSES = [
    ("superuser", "examples,coverage,fuzzing", MAX_EXAMPLES),
    ("member", "examples,fuzzing", MAX_EXAMPLES),
    ("agent", "examples,coverage,fuzzing", MAX_EXAMPLES),
]


def test_the_api_answers_as_its_schema_says(server, seeded, tmp_path):
    # given: the schema the server serves, and a token per caller
    answer = requests.get(
        f"{server}/api/v1/schema/",
        headers={
            "Authorization": seeded["tokens"]["superuser"],
            "Accept": "application/vnd.oai.openapi+json",
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    schema = tmp_path / "openapi.json"
    schema.write_text(answer.text)
    config = _config(tmp_path, seeded["ids"])

    # when: schemathesis runs as each caller (the agent's token works only on the
    # agent's API, a user's token everywhere else)
    failed = []
    for caller, phases, examples in PASSES:
        scope = (
            ("--include-path-regex", AGENT_PATHS)
            if caller == "agent"
            else ("--exclude-path-regex", AGENT_PATHS)
        )
        log = tmp_path / f"schemathesis-{caller}.log"
        result = _schemathesis(
            server, seeded["tokens"][caller], config, schema, log, phases, examples, *scope
        )
        if result.returncode != 0:
            failed.append(f"== as {caller} ==\n{log.read_text()[-20000:]}")

    # then
    assert not failed, "\n".join(failed)
