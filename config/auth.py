"""The token endpoint, throttled against password guessing.

Attempts are counted per username *and* client address, so guessing one
user's password from one place gets a 429 with ``Retry-After`` while that user
elsewhere, and every other user, still log in. The counts live in the
database cache (``CACHES["throttle"]``, a table made by migrate), shared by
every web worker: a per-process cache would let N workers allow N times the
rate.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import caches
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import AllowAny
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class LoginRateThrottle(SimpleRateThrottle):
    scope = "login"

    def __init__(self):
        self.cache = caches[settings.API_THROTTLE_CACHE]
        super().__init__()

    def get_cache_key(self, request, view):
        data = request.data
        username = data.get("username", "") if hasattr(data, "get") else ""
        # get_ident trusts X-Forwarded-For only as far as NUM_PROXIES says.
        ident = f"{str(username).strip().casefold()}\n{self.get_ident(request)}"
        # Hashed: any username fits a cache key, and none is stored in clear.
        digest = hashlib.sha256(ident.encode(errors="replace")).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}


class TokenView(ObtainAuthToken):
    """``POST {username, password}`` → ``{token}``."""

    # A stale token sent along must not stand in the way of getting a new one.
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginRateThrottle]
    # The project's parsers (NUL-safe) and renderer, not ObtainAuthToken's own.
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES
    renderer_classes = api_settings.DEFAULT_RENDERER_CLASSES
