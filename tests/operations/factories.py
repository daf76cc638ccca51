import factory
from django.contrib.auth import get_user_model

from operations.choices import MemberRole
from operations.models import OperationRun, Tenant, Workspace, WorkspaceMembership


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkspaceMembership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = MemberRole.VIEWER


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Tenant {n}")


class OperationRunFactory(factory.django.DjangoModelFactory):
    """A raw ledger row, for tests of the database and the read side. Tests of
    behaviour start runs through the services instead."""

    class Meta:
        model = OperationRun

    workspace = factory.SubFactory(WorkspaceFactory)
    type = "test.workspace_job"
    run_identity_hash = factory.Sequence(lambda n: f"{n:064x}")
    initiator_name = "factory"
