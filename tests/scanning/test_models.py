"""What the database itself guarantees, on SQLite and PostgreSQL alike."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from scanning.choices import ACTIVE_STATUSES, ScanJobStatus
from scanning.models import ScanAgentStatus, ScanJob, scan_settings_errors, validate_scan_settings
from tests.scanning.factories import ScanJobFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("first", ACTIVE_STATUSES)
@pytest.mark.parametrize("second", [ScanJobStatus.READY, ScanJobStatus.COMMITTING])
def test_the_database_refuses_a_second_active_job(first, second):
    # given: one job holding the scanner
    ScanJobFactory(status=first)

    # when / then: a second active row is refused by the partial unique index
    with pytest.raises(IntegrityError), transaction.atomic():
        ScanJobFactory(status=second)
    assert ScanJob.objects.filter(status__in=ACTIVE_STATUSES).count() == 1


def test_the_database_refuses_an_update_into_the_active_slot():
    ScanJobFactory(status=ScanJobStatus.SCANNING)
    waiting = ScanJobFactory(status=ScanJobStatus.QUEUED)

    with pytest.raises(IntegrityError), transaction.atomic():
        ScanJob.objects.filter(pk=waiting.pk).update(status=ScanJobStatus.READY)

    waiting.refresh_from_db()
    assert waiting.status == ScanJobStatus.QUEUED


def test_any_number_of_waiting_and_finished_jobs_may_exist_beside_the_active_one():
    ScanJobFactory(status=ScanJobStatus.PREVIEW)
    for status in [ScanJobStatus.DRAFT, ScanJobStatus.QUEUED, *ScanJobStatus.values[7:]] * 2:
        ScanJobFactory(status=status)

    assert ScanJob.objects.count() == 1 + 2 * 5


def test_the_agent_status_is_a_single_row_enforced_by_a_check_constraint():
    # given: the row the migration seeded
    assert ScanAgentStatus.objects.filter(id=1).exists()

    # when / then: any other id is refused by the database
    with pytest.raises(IntegrityError), transaction.atomic():
        ScanAgentStatus.objects.create(id=2)
    assert ScanAgentStatus.objects.count() == 1


def test_an_unknown_status_is_refused_by_the_database():
    job = ScanJobFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ScanJob.objects.filter(pk=job.pk).update(status="lost")


@pytest.mark.parametrize(
    ("scan_settings", "bad_keys"),
    [
        ({"mode": "sepia", "resolution": 300, "source": "adf"}, {"mode"}),
        ({"mode": "gray", "resolution": 74, "source": "adf"}, {"resolution"}),
        ({"mode": "gray", "resolution": 1201, "source": "adf"}, {"resolution"}),
        ({"mode": "gray", "resolution": "300", "source": "adf"}, {"resolution"}),
        ({"mode": "gray", "resolution": True, "source": "adf"}, {"resolution"}),
        ({"mode": "gray", "resolution": 300, "source": "adf_triplex"}, {"source"}),
        ({"mode": "gray", "resolution": 300}, {"source"}),
        ({"mode": "gray", "resolution": 300, "source": "adf", "gamma": 2}, {"settings"}),
    ],
)
def test_scan_settings_are_validated_field_by_field(scan_settings, bad_keys):
    assert set(scan_settings_errors(scan_settings)) == bad_keys
    with pytest.raises(ValidationError) as error:
        validate_scan_settings(scan_settings)
    assert len(error.value.messages) == len(bad_keys)


@pytest.mark.parametrize(
    "scan_settings",
    [
        {"mode": "color", "resolution": 75, "source": "flatbed"},
        {"mode": "lineart", "resolution": 1200, "source": "adf_duplex"},
    ],
)
def test_scan_settings_at_the_limits_are_valid(scan_settings):
    assert scan_settings_errors(scan_settings) == {}
    validate_scan_settings(scan_settings)
