"""Operations actions that can wait for approval (registered in OperationsConfig.ready())."""

from __future__ import annotations

from rest_framework import serializers

from approvals.templating import html_description_list
from config.errors import Forbidden
from operations.models import Tenant, Workspace
from operations.selectors import workspaces_where_user_may_create_tenants
from operations.services import tenant_create


class TenantWorkspaceField(serializers.SlugRelatedField):
    """A workspace by slug, looked up only among those the requester may create
    tenants in (``context["user"]``; every workspace when there is none, at
    execution). The refusal names neither the slug nor whether it exists, so a
    workspace you may not use reads exactly like one that does not exist."""

    default_error_messages = {
        "does_not_exist": "No workspace you may create tenants in has this slug.",
        "invalid": "No workspace you may create tenants in has this slug.",
    }

    def __init__(self, **kwargs):
        super().__init__(slug_field="slug", queryset=Workspace.objects.all(), **kwargs)

    def get_queryset(self):
        if "user" not in self.context:
            return Workspace.objects.all()
        return workspaces_where_user_may_create_tenants(self.context["user"])


class CreateTenantPayload(serializers.Serializer):
    workspace = TenantWorkspaceField()
    name = serializers.CharField(max_length=200)

    def validate(self, data):
        # Only reached for a workspace the requester may use (see the field).
        if Tenant.objects.filter(workspace=data["workspace"], name=data["name"]).exists():
            raise serializers.ValidationError(
                {"name": "This workspace already has a tenant with that name."}
            )
        return data


def authorize_create_tenant(user, payload) -> None:
    """Operators and admins of the workspace (superusers: any workspace)."""
    workspace = payload["workspace"]
    if not workspaces_where_user_may_create_tenants(user).filter(pk=workspace.pk).exists():
        raise Forbidden(
            f"{user.get_username() if user else 'The requester'} may not create tenants in "
            f"the workspace {workspace.slug!r} (operators and admins of it may).",
            code="approvals.not_authorized",
        )


def create_tenant_summary(payload) -> str:
    workspace = payload["workspace"]
    return html_description_list(
        [
            ("Create tenant", payload["name"]),
            ("In workspace", f"{workspace.name} ({workspace.slug})"),
        ]
    )


def create_tenant(payload, *, pending_action) -> dict:
    tenant = tenant_create(workspace=payload["workspace"], name=payload["name"])
    return {"tenant_id": tenant.pk, "external_id": str(tenant.external_id), "name": tenant.name}


def register() -> None:
    from approvals.registry import register_action_handler

    register_action_handler(
        "operations.create_tenant",
        create_tenant,
        payload_serializer=CreateTenantPayload,
        authorize=authorize_create_tenant,
        summary=create_tenant_summary,
    )
