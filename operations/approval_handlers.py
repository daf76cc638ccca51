"""Operations actions that can wait for approval (registered in OperationsConfig.ready())."""

from rest_framework import serializers

from operations.models import Tenant, Workspace
from operations.services import tenant_create


class CreateTenantPayload(serializers.Serializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", queryset=Workspace.objects.all())
    name = serializers.CharField(max_length=200)

    def validate(self, data):
        if Tenant.objects.filter(workspace=data["workspace"], name=data["name"]).exists():
            raise serializers.ValidationError(
                {"name": "This workspace already has a tenant with that name."}
            )
        return data


def create_tenant(payload, *, pending_action) -> dict:
    tenant = tenant_create(workspace=payload["workspace"], name=payload["name"])
    return {"tenant_id": tenant.pk, "external_id": str(tenant.external_id), "name": tenant.name}
