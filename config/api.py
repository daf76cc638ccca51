"""Project-wide REST plumbing named by the ``REST_FRAMEWORK`` settings:
pagination and the renderer. The JSON renderer removes configured secret
values from every answer (``operations.sanitize``), whatever put them there.

Nothing here imports ``rest_framework.views``: its ``APIView`` reads these
classes from the settings when it is defined, so a module that both defines
them and imports it fails whenever it is the first to be imported (DRF's
pagination system check does that). The exception handler, which needs
``rest_framework.views``, is ``config.exception_handler``.
"""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer

from operations.sanitize import redact_configured_secrets


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class RedactingJSONRenderer(JSONRenderer):
    """JSON, with every configured secret value (``BUREAU_SECRET_SETTINGS``)
    replaced by ``[REDACTED]`` in whatever the view answered."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        rendered = super().render(data, accepted_media_type, renderer_context)
        if not rendered:
            return rendered
        text = rendered.decode()
        redacted = redact_configured_secrets(text)
        return rendered if redacted == text else redacted.encode()
