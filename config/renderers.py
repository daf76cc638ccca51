"""The JSON renderer of every API answer. It lives apart from ``config.api``:
DRF reads ``DEFAULT_RENDERER_CLASSES`` when ``rest_framework.views`` is first
imported, and ``config.api`` imports that module, so a renderer named in the
settings and kept there would be looked up in a half-imported module whenever
``config.api`` happens to be imported first (a system check reading the
settings may do that: ``manage.py`` then dies before it starts)."""

from __future__ import annotations

from rest_framework.renderers import JSONRenderer

from operations.sanitize import redact_configured_secrets


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
