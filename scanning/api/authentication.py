"""The agent API's own authentication. It is deliberately NOT in
REST_FRAMEWORK's defaults: only the agent views list it, so an agent token
authenticates nowhere else, and the agent views list nothing else, so a
user's token or session is refused there."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from scanning.models import ScanAgent
from scanning.permissions import require_operator
from scanning.services import scan_agent_authenticate

KEYWORD = b"bearer"


class ScanAgentPrincipal:
    """``request.user`` on the agent API. Not a Django user: it has no
    permissions, and user-facing views refuse it (``IsPerson``)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, agent: ScanAgent):
        self.agent = agent

    def get_username(self) -> str:
        return self.agent.actor_label

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def has_perms(self, perms, obj=None) -> bool:
        return False

    def __str__(self) -> str:
        return self.get_username()


class ScanAgentTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer bsa_…`` with a scan agent token."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid agent token header.")
        try:
            token = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid agent token header.") from None
        agent = scan_agent_authenticate(token=token)
        if agent is None:
            raise exceptions.AuthenticationFailed("Invalid or inactive agent token.")
        return ScanAgentPrincipal(agent), agent

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="scan-agent"'


class IsScanAgent(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, ScanAgentPrincipal)


class IsPerson(BasePermission):
    """Authenticated as a person (token or session), never as an agent."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and not isinstance(user, ScanAgentPrincipal))


class CanOperateScanner(IsPerson):
    """Reading needs a person; changing needs what the services require
    (``scanning.operate_scanner``): the services' own check, run here too so
    a refused request is answered (403 with its code) before its body is read."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        require_operator(request.user)
        return True


try:  # the API docs describe the scheme; the API works without drf-spectacular
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class ScanAgentTokenScheme(OpenApiAuthenticationExtension):
        target_class = "scanning.api.authentication.ScanAgentTokenAuthentication"
        name = "scanAgentToken"

        def get_security_definition(self, auto_schema):
            return {
                "type": "http",
                "scheme": "bearer",
                "description": "A scan agent token (bsa_…), from manage.py scanning_create_agent.",
            }
except ImportError:  # pragma: no cover
    pass
