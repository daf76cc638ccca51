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
