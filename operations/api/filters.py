import django_filters

from operations.catalog import operation_catalog
from operations.choices import RunOutcome, RunStatus
from operations.models import OperationRun


class OperationRunFilter(django_filters.FilterSet):
    # Choices are read when the filter is built, so types registered by any app count.
    type = django_filters.ChoiceFilter(choices=operation_catalog.choices)
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)
    outcome = django_filters.ChoiceFilter(choices=RunOutcome.choices)
    tenant = django_filters.NumberFilter(field_name="tenant_id", min_value=1)
    tenant_external_id = django_filters.UUIDFilter(field_name="tenant__external_id")
    workspace = django_filters.NumberFilter(field_name="workspace_id", min_value=1)
    workspace_slug = django_filters.CharFilter(field_name="workspace__slug")

    class Meta:
        model = OperationRun
        fields = ["type", "status", "outcome", "tenant", "workspace"]
