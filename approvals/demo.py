"""Demo data for `make run`: the admin can request approvals right away."""

from approvals.models import ApprovalTemplate
from approvals.selectors import knox_ep_id_get
from approvals.services import knox_profile_set

NEW_TENANT_TEMPLATE = """<h2>New tenant: {{tenant_name}}</h2>
<p>Please approve creating the tenant <b>{{tenant_name}}</b> in the workspace <code>{{workspace}}</code>.</p>
{{details}}"""


def seed(admin) -> list[str]:
    said = []
    if not knox_ep_id_get(user=admin):
        knox_profile_set(user=admin, ep_id=f"EP-{admin.get_username().upper()}")
        said.append(f"gave {admin.get_username()} the Knox EP ID EP-{admin.get_username().upper()}")
    _, created = ApprovalTemplate.objects.get_or_create(
        name="New tenant",
        defaults={
            "description": "Approval to create a tenant (action operations.create_tenant).",
            "content": NEW_TENANT_TEMPLATE,
            "sample_variables": {
                "tenant_name": "Initech",
                "workspace": "demo",
                "details": "<ul><li>requested from the demo</li></ul>",
            },
            "created_by": admin,
            "updated_by": admin,
        },
    )
    if created:
        said.append("created the approval template 'New tenant'")
    return said
