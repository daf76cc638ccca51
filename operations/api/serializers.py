from rest_framework import serializers

from operations.catalog import operation_catalog
from operations.models import OperationRun, Tenant, Workspace


class WorkspaceRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Workspace
        fields = ["id", "slug", "name"]


class TenantRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "external_id", "name"]


class FailureSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class OperationRunSerializer(serializers.ModelSerializer):
    workspace = WorkspaceRefSerializer(read_only=True)
    tenant = TenantRefSerializer(read_only=True, allow_null=True)
    type_label = serializers.SerializerMethodField()
    summary_counts = serializers.DictField(child=serializers.IntegerField())
    failure_summary = FailureSerializer(many=True)
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = OperationRun
        fields = [
            "id",
            "type",
            "type_label",
            "status",
            "outcome",
            "workspace",
            "tenant",
            "user",
            "initiator_name",
            "run_identity_hash",
            "summary_counts",
            "failure_summary",
            "context",
            "started_at",
            "completed_at",
            "duration_seconds",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_type_label(self, run: OperationRun) -> str:
        return operation_catalog.get(run.type).label if run.type in operation_catalog else run.type

    def get_duration_seconds(self, run: OperationRun) -> float | None:
        duration = run.duration
        return round(duration.total_seconds(), 3) if duration is not None else None
