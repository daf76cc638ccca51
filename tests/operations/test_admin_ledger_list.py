"""The ledger's list: business runs by default, Bureau's housekeeping on
request; an identity hash found by its first characters."""

import pytest
from django.conf import settings
from django.urls import reverse

from operations.models import Workspace
from tests.operations.factories import OperationRunFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:operations_operationrun_changelist")


@pytest.fixture
def runs():
    system = Workspace.objects.get(slug=settings.BUREAU_SYSTEM_WORKSPACE_SLUG)
    return {
        "business": OperationRunFactory(type="test.tenant_job"),
        "housekeeping": OperationRunFactory(workspace=system, type="approvals.poll_knox"),
    }


def _listed(response) -> set:
    assert response.status_code == 200
    return set(response.context["cl"].result_list)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"business"}),
        ("?kind=business", {"business"}),
        ("?kind=housekeeping", {"housekeeping"}),
        ("?kind=all", {"business", "housekeeping"}),
    ],
)
def test_the_ledger_hides_housekeeping_runs_unless_asked(admin_client, runs, query, expected):
    assert _listed(admin_client.get(CHANGELIST + query)) == {runs[k] for k in expected}


def test_the_kind_filter_shows_business_as_chosen_by_default(admin_client, runs):
    page = admin_client.get(CHANGELIST).text
    assert '<li class="selected">\n    <a href="?kind=business"' in page


def test_an_identity_hash_is_found_by_its_first_characters(admin_client):
    run = OperationRunFactory(run_identity_hash="abcdef" + "0" * 58)
    OperationRunFactory(run_identity_hash="abcxyz" + "0" * 58)

    found = _listed(admin_client.get(f"{CHANGELIST}?q=abcde&kind=all"))

    assert found == {run}
