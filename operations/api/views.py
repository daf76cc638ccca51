from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from operations.api.filters import OperationRunFilter
from operations.api.serializers import OperationRunSerializer
from operations.models import OperationRun
from operations.selectors import operation_runs_visible_to


@extend_schema_view(
    list=extend_schema(summary="List operation runs, newest first", tags=["operations"]),
    retrieve=extend_schema(summary="One operation run", tags=["operations"]),
)
class OperationRunViewSet(viewsets.ReadOnlyModelViewSet):
    """The ledger, limited to the workspaces you belong to; another
    workspace's run is a 404, not a 403, so ids do not leak."""

    queryset = OperationRun.objects.none()  # for the schema; requests use get_queryset
    serializer_class = OperationRunSerializer
    filterset_class = OperationRunFilter

    def get_queryset(self):
        return operation_runs_visible_to(self.request.user).order_by("-created_at", "-id")
