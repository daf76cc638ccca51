import factory
from django.contrib.auth.models import Permission
from django.urls import reverse

from approvals.models import ApprovalTemplate
from approvals.services import knox_profile_set
from operations.choices import MemberRole
from tests.operations.factories import MembershipFactory, UserFactory


class ApprovalTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApprovalTemplate

    name = factory.Sequence(lambda n: f"Template {n}")
    content = "<p>{{tenant_name}}</p>"
    sample_variables = factory.LazyAttribute(lambda t: {"tenant_name": "Example"})


def staff_with(*permissions: str, **fields):
    """A staff user holding exactly these permissions ("app.codename")."""
    user = UserFactory(is_staff=True, **fields)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def requester_in(workspace, *, role=MemberRole.OPERATOR, ep_id: str, **fields):
    """A user with a Knox EP ID and a membership (of ``role``) in ``workspace``;
    ``role=None`` for no membership at all."""
    user = UserFactory(**fields)
    knox_profile_set(user=user, ep_id=ep_id)
    if role is not None:
        MembershipFactory(workspace=workspace, user=user, role=role)
    return user


def in_flight_actions(count: int, *, user, action_type: str, knox=None, prefix: str = "flight"):
    """``count`` submitted, pending actions (and their approval logs) in one
    go, in primary-key order, and the same documents in progress in ``knox``
    (the simulator) when given: the shape of a large poll, without a submit
    each."""
    from django.utils import timezone

    from approvals.choices import ActionStatus, KnoxStatus
    from approvals.models import ApprovalLog, PendingAction
    from approvals.services import payload_sha256

    ids = [f"{prefix}{n:0{32 - len(prefix)}d}" for n in range(count)]
    logs = ApprovalLog.objects.bulk_create(
        [
            ApprovalLog(
                ap_inf_id=ap_inf_id,
                knox_status=KnoxStatus.IN_PROGRESS,
                subject=f"Document {n}",
                contents="<p>in flight</p>",
                contents_sha256="0" * 64,
                payload_sha256=payload_sha256({"n": n}),
                approvers=[{"ep_id": "EP-BOSS-1", "seq": 1, "role": 1}],
                submitted_by=user,
                submitted_at=timezone.now(),
            )
            for n, ap_inf_id in enumerate(ids)
        ]
    )
    actions = PendingAction.objects.bulk_create(
        [
            PendingAction(
                ap_inf_id=log.ap_inf_id,
                approval_log=log,
                action_type=action_type,
                action_payload={"n": n},
                status=ActionStatus.PENDING,
                created_by=user,
            )
            for n, log in enumerate(logs)
        ]
    )
    if knox is not None:
        knox.add(*({"apInfId": ap_inf_id, "subject": "Document"} for ap_inf_id in ids))
    return sorted(actions, key=lambda action: action.pk)


def tenant_request_body(*, name: str = "Initech", workspace: str = "acme", **overrides) -> dict:
    """The body of ``POST /api/v1/approvals/requests/`` asking to create tenant
    ``name`` in ``workspace`` with the "New tenant" template; ``overrides``
    replace top-level keys."""
    return {
        "action_type": "operations.create_tenant",
        "payload": {"workspace": workspace, "name": name},
        "title": f"Create tenant {name}",
        "template_name": "New tenant",
        "variables": {"tenant_name": name, "workspace": workspace},
        "approvers": ["EP-BOSS-1"],
        **overrides,
    }


def post_request_form(client, template, /, **fields):
    """The console's guided request form as the browser posts it after
    choosing ``template`` and the create-tenant action type (a field given as
    None is not posted)."""
    data = {
        "shown_for": f"{template.pk}|operations.create_tenant",
        "template": template.pk,
        "action_type": "operations.create_tenant",
        "title": "From the console",
        "variable__tenant_name": "Console",
        "variable__workspace": "acme",
        "payload__workspace": "acme",
        "payload__name": "Console",
        "approvers": "EP-BOSS-1",
        "description": "",
        **fields,
    }
    return client.post(
        reverse("admin:approvals_pendingaction_request"),
        {key: value for key, value in data.items() if value is not None},
    )
