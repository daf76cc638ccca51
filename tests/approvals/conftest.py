import pytest

from approvals.knox.launcher import Simulator, start_simulator, stop_simulator
from approvals.models import ApprovalTemplate
from approvals.services import knox_profile_set
from operations.choices import MemberRole
from tests.operations.factories import MembershipFactory, UserFactory, WorkspaceFactory


@pytest.fixture(scope="session")
def _simulator_process(tmp_path_factory):
    simulator = start_simulator(tmp_path_factory.mktemp("knox") / "documents.json")
    yield simulator
    stop_simulator(simulator)


@pytest.fixture
def knox(_simulator_process, settings) -> Simulator:
    """A clean simulator, and Bureau pointed at it with short timeouts."""
    _simulator_process.reset()
    settings.KNOX_BASE_URL = _simulator_process.url
    settings.KNOX_READ_TIMEOUT = 1.0
    settings.KNOX_STATUS_RETRIES = 0
    settings.KNOX_SUBMIT_GRACE_SECONDS = 0
    return _simulator_process


@pytest.fixture
def demo_workspace(db):
    return WorkspaceFactory(slug="acme", name="Acme")


@pytest.fixture
def requester(demo_workspace):
    """A user with a Knox EP ID who may create tenants in ``acme`` (an operator)."""
    user = UserFactory(username="requester")
    knox_profile_set(user=user, ep_id="EP-REQ-1")
    MembershipFactory(workspace=demo_workspace, user=user, role=MemberRole.OPERATOR)
    return user


@pytest.fixture
def tenant_template(db):
    return ApprovalTemplate.objects.create(
        name="New tenant",
        content="<h2>New tenant {{tenant_name}}</h2><p>Requested for {{workspace}}.</p>",
        sample_variables={"tenant_name": "Example", "workspace": "acme"},
    )


@pytest.fixture
def request_tenant(requester, demo_workspace, tenant_template):
    """Request approval to create a tenant; returns the pending action."""
    from approvals.services import approval_request

    def request(name: str = "Initech", **overrides):
        kwargs = {
            "payload": {"workspace": demo_workspace.slug, "name": name},
            "title": f"Create tenant {name}",
            "template_name": tenant_template.name,
            "variables": {"tenant_name": name, "workspace": demo_workspace.slug},
            "approvers": ["EP-BOSS-1"],
            "user": requester,
        }
        kwargs.update(overrides)
        return approval_request(action_type="operations.create_tenant", **kwargs)

    return request
