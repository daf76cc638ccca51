import factory
from django.contrib.auth.models import Permission

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
