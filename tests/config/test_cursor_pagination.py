"""Lists page by number (``?page=``, with ``count``) as before, or by cursor
(``?cursor=``, DRF's CursorPagination semantics) so a deep page reads from
an index instead of skipping rows (issue 11, item 3)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from operations.models import OperationRun
from tests.approvals.factories import ApprovalTemplateFactory
from tests.operations.factories import OperationRunFactory

pytestmark = pytest.mark.django_db

RUNS_URL = "/api/v1/operations/runs/"


def _walk(client, url: str, link: str = "next") -> list[dict]:
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        pages.append(response.data)
        url = response.data[link]
    return pages


def test_a_cursor_walk_lists_every_row_once_newest_first(user_client, workspace):
    # given: five runs, two of them created at the same instant
    runs = [OperationRunFactory(workspace=workspace) for _ in range(5)]
    same = timezone.now() - timedelta(hours=1)
    OperationRun.objects.filter(pk__in=[runs[1].pk, runs[2].pk]).update(created_at=same)
    newest_first = [run["id"] for run in user_client.get(RUNS_URL).data["results"]]

    # when: the first cursor page, then its next links
    pages = _walk(user_client, f"{RUNS_URL}?cursor=&page_size=2")

    # then: pages of 2, 2 and 1, in the page-number order, no row twice, no count
    assert [len(page["results"]) for page in pages] == [2, 2, 1]
    assert [run["id"] for page in pages for run in page["results"]] == newest_first
    assert all("count" not in page for page in pages)
    assert pages[0]["previous"] is None
    assert "cursor=" in pages[1]["previous"]


def test_the_previous_link_goes_back_a_page(user_client, workspace):
    # given: the second cursor page of five runs
    for _ in range(5):
        OperationRunFactory(workspace=workspace)
    first = user_client.get(f"{RUNS_URL}?cursor=&page_size=2").data
    second = user_client.get(first["next"]).data

    # when
    back = user_client.get(second["previous"]).data

    # then
    assert [run["id"] for run in back["results"]] == [run["id"] for run in first["results"]]


def test_page_numbers_still_count(user_client, workspace):
    # given
    for _ in range(3):
        OperationRunFactory(workspace=workspace)

    # when
    page = user_client.get(f"{RUNS_URL}?page=2&page_size=2").data

    # then: the page-number answer as before
    assert page["count"] == 3
    assert len(page["results"]) == 1
    assert "page_size=2" in page["previous"]


@pytest.mark.parametrize("cursor", ["not-a-cursor", "%%%", "cD1ub3QtYS1kYXRl", "bz0tMw==", "cD0A"])
def test_a_cursor_not_given_out_is_a_400_naming_it(user_client, workspace, cursor):
    # given
    OperationRunFactory(workspace=workspace)

    # when
    response = user_client.get(f"{RUNS_URL}?cursor={cursor}")

    # then
    assert response.status_code == 400
    assert "cursor" in response.data


def test_a_page_and_a_cursor_together_are_a_400(user_client, workspace):
    response = user_client.get(f"{RUNS_URL}?cursor=&page=2")

    assert response.status_code == 400
    assert "cursor" in response.data


def test_the_schema_describes_both_ways_of_paging():
    # when
    schema = SchemaGenerator().get_schema(request=None, public=True)

    # then: the cursor is a parameter, and a page need not carry a count
    parameters = {p["name"] for p in schema["paths"][RUNS_URL]["get"]["parameters"]}
    assert {"page", "page_size", "cursor"} <= parameters
    page = schema["components"]["schemas"]["PaginatedOperationRunList"]
    assert page["required"] == ["results"]
    assert {"count", "next", "previous", "results"} <= set(page["properties"])


def test_a_cursor_with_a_nul_character_is_a_400_not_a_database_error(user_client):
    # given: a list ordered by a text field (templates, by name)
    ApprovalTemplateFactory()

    # when: a well-formed cursor whose position holds a NUL ("p=\x00")
    response = user_client.get("/api/v1/approvals/templates/?cursor=cD0A")

    # then
    assert response.status_code == 400
    assert "cursor" in response.data


def _runs_with_ties(workspace, count: int) -> None:
    """``count`` runs in ``workspace``, three at each created_at."""
    OperationRun.objects.bulk_create(
        OperationRun(workspace=workspace, type="test.workspace_job", run_identity_hash=f"{n:064x}")
        for n in range(count)
    )
    keys = list(OperationRun.objects.filter(workspace=workspace).values_list("pk", flat=True))
    base = timezone.now() - timedelta(days=1)
    for start in range(0, len(keys), 3):
        OperationRun.objects.filter(pk__in=keys[start : start + 3]).update(
            created_at=base + timedelta(seconds=start)
        )


def test_a_deep_numbered_page_finds_its_keys_first_and_lists_what_one_statement_would(
    user, user_client, workspace
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from config.api import KEYS_FIRST_FROM
    from operations.selectors import operation_runs_visible_to
    from tests.operations.factories import WorkspaceFactory

    # given: more runs than KEYS_FIRST_FROM visible to the caller, with ties on
    # created_at, and runs in a workspace the caller is not a member of
    mine = KEYS_FIRST_FROM + 30
    _runs_with_ties(workspace, mine)
    _runs_with_ties(WorkspaceFactory(), 30)
    expected = list(
        operation_runs_visible_to(user)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)[KEYS_FIRST_FROM : KEYS_FIRST_FROM + 20]
    )
    page = KEYS_FIRST_FROM // 20 + 1  # the page starting at row KEYS_FIRST_FROM

    # when
    with CaptureQueriesContext(connection) as queries:
        response = user_client.get(f"{RUNS_URL}?page={page}&page_size=20")

    # then: the same rows, in the same order, as one OFFSET over whole rows;
    # the OFFSET itself read keys only
    assert response.status_code == 200, response.content
    assert [run["id"] for run in response.data["results"]] == expected
    assert response.data["count"] == mine
    offsets = [q["sql"] for q in queries.captured_queries if "OFFSET" in q["sql"]]
    assert len(offsets) == 1
    assert offsets[0].split(" FROM ")[0].count(",") == 0  # SELECT <the key> FROM …


def test_a_shallow_numbered_page_is_still_one_statement(user_client, workspace):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _runs_with_ties(workspace, 30)

    with CaptureQueriesContext(connection) as queries:
        response = user_client.get(f"{RUNS_URL}?page=2&page_size=10")

    assert response.status_code == 200
    assert len(response.data["results"]) == 10
    offsets = [q["sql"] for q in queries.captured_queries if "OFFSET" in q["sql"]]
    assert len(offsets) == 1 and offsets[0].split(" FROM ")[0].count(",") > 0  # whole rows
