import django_filters

from config.filters import IsoDateTimeFilter
from scanning.choices import ScanJobStatus
from scanning.models import Document, ScanJob


class ScanJobFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=ScanJobStatus.choices)
    q = django_filters.CharFilter(field_name="title", lookup_expr="icontains")
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = ScanJob
        fields = ["status", "q", "document"]


class DocumentFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="title", lookup_expr="icontains")
    sha256 = django_filters.CharFilter()

    class Meta:
        model = Document
        fields = ["in_inbox", "q", "sha256"]
