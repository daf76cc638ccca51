"""Every REST list answers a page in a constant number of queries, whatever
the page size, with page numbers and with cursors (issue 11, item 3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from approvals.models import PendingActionTransition
from automation.models import AutomationExecution, AutomationRule
from automation.services import rule_save
from scanning.models import ScanJobBatch
from tests.approvals.factories import ApprovalTemplateFactory
from tests.automation.factories import (
    AlertRecipientFactory,
    GroupFactory,
    alert_action,
    make_rule,
)
from tests.observability.factories import NotificationDeliveryFactory, PendingActionFactory
from tests.operations.factories import (
    OperationRunFactory,
    TenantFactory,
    UserFactory,
    WorkspaceFactory,
)
from tests.scanning.factories import DocumentFactory, ScanJobFactory

pytestmark = pytest.mark.django_db

ROWS = 6  # a page of 2 and a page of 6 (every row) must cost the same


def _runs(reader, n: int) -> None:
    workspace = WorkspaceFactory()
    for _ in range(n):
        OperationRunFactory(workspace=workspace, tenant=TenantFactory(workspace=workspace))


def _pending_actions(reader, n: int) -> None:
    for _ in range(n):
        action = PendingActionFactory(created_by=reader)
        PendingActionTransition.objects.create(
            pending_action=action, from_status="", to_status="pending", actor=reader
        )


def _templates(reader, n: int) -> None:
    for _ in range(n):
        ApprovalTemplateFactory(default_approvers=[{"ep_id": "EP-1"}])


def _rules(reader, n: int) -> None:
    parent = None
    for i in range(n):
        parent = make_rule(
            actor=reader,
            name=f"rule {i}",
            actions=[alert_action(recipients={"users": [reader.pk]})],
            depends_on=[parent] if parent else [],
        )


def _executions(reader, n: int) -> None:
    rule = make_rule(actor=reader, name="executed")
    for _ in range(n):
        AutomationExecution.objects.create(
            rule=rule, rule_version=1, entity_type="operations.Tenant", status="success"
        )


def _deliveries(reader, n: int) -> None:
    for _ in range(n):
        NotificationDeliveryFactory(recipient_user=reader)


def _alerts(reader, n: int) -> None:
    group = GroupFactory()
    reader.groups.add(group)
    for i in range(n):
        if i % 2:
            AlertRecipientFactory(user=reader)
        else:
            AlertRecipientFactory(recipient_type="role", group=group)


def _scan_jobs(reader, n: int) -> None:
    for _ in range(n):
        job = ScanJobFactory(created_by=reader, document=DocumentFactory())
        ScanJobBatch.objects.create(
            job=job, batch_seq=1, page_count=1, size_bytes=1, sha256="0" * 64
        )


def _documents(reader, n: int) -> None:
    for _ in range(n):
        DocumentFactory()


def _rule_versions(reader, n: int) -> dict:
    rule = make_rule(actor=reader, name="edited", actions=[alert_action()])
    for i in range(n - 1):  # the create kept version 1
        rule = rule_save(rule=rule, actor=reader, description=f"edit {i}")
    return {"pk": rule.pk}


@dataclass(frozen=True)
class ListEndpoint:
    url_name: str
    rows: Callable[[object, int], dict | None]  # returns the URL's kwargs, if it has any
    schema_path: str = ""  # for a URL with kwargs: its path in the schema

    def path(self) -> str:
        return self.schema_path or reverse(self.url_name)

    def __str__(self) -> str:
        return self.url_name


LISTS = [
    ListEndpoint("operation-run-list", _runs),
    ListEndpoint("pending-action-list", _pending_actions),
    ListEndpoint("approval-templates", _templates),
    ListEndpoint("automation-rule-list", _rules),
    ListEndpoint("automation-execution-list", _executions),
    ListEndpoint("automation-delivery-list", _deliveries),
    ListEndpoint("alerts-mine", _alerts),
    ListEndpoint("scanning:job-list", _scan_jobs),
    ListEndpoint("scanning:document-list", _documents),
    ListEndpoint(
        "automation-rule-versions",
        _rule_versions,
        schema_path="/api/v1/automation/rules/{id}/versions/",
    ),
]


@pytest.fixture
def reader():
    """Sees every row of every list (staff and superuser), and has alerts."""
    return UserFactory(is_staff=True, is_superuser=True)


def _queries(client: APIClient, url: str) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries), response.data


@pytest.mark.parametrize("endpoint", LISTS, ids=str)
@pytest.mark.parametrize("mode", ["page", "cursor"])
def test_a_page_costs_the_same_queries_whatever_its_size(reader, endpoint, mode):
    # given: more rows than the small page holds, each with its related rows
    kwargs = endpoint.rows(reader, ROWS)
    client = APIClient()
    client.force_authenticate(reader)
    url = reverse(endpoint.url_name, kwargs=kwargs) + ("?cursor=&" if mode == "cursor" else "?")

    # when: a page of 2 and a page of every row
    small, small_page = _queries(client, f"{url}page_size=2")
    large, large_page = _queries(client, f"{url}page_size={ROWS}")

    # then: both were read, with the same number of queries
    assert len(small_page["results"]) == 2
    assert len(large_page["results"]) == ROWS
    assert small == large, f"{endpoint}: {small} queries for 2 rows, {large} for {ROWS}"


def test_every_list_endpoint_is_checked():
    # given: the paginated GET operations the OpenAPI schema declares
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paginated = {
        path
        for path, operations in schema["paths"].items()
        if "get" in operations
        and any(p["name"] == "cursor" for p in operations["get"].get("parameters", []))
    }

    # then: each is one of LISTS
    checked = {endpoint.path() for endpoint in LISTS}
    assert paginated == checked


def test_rules_in_a_list_carry_their_actions_and_parents(reader):
    # given: a rule with an action, depending on another
    parent = make_rule(actor=reader, name="a parent")
    make_rule(
        actor=reader,
        name="b child",
        actions=[alert_action(recipients={"users": [reader.pk]})],
        depends_on=[parent],
    )
    client = APIClient()
    client.force_authenticate(reader)

    # when
    rules = client.get(reverse("automation-rule-list")).data["results"]

    # then: the prefetched relations are the rule's own
    child = next(rule for rule in rules if rule["name"] == "b child")
    assert child["depends_on"] == [parent.pk]
    assert [action["action_type"] for action in child["actions"]] == ["create_alert"]
    assert AutomationRule.objects.count() == 2
