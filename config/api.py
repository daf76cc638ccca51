"""Project-wide REST plumbing: pagination, the renderer and the one exception
handler.

Every error answer has the same shape: ``{code, detail}`` plus what the error
adds (``current_state`` for a 409, one key per field for a validation error,
``[messages]`` each). The JSON renderer removes configured secret values from
every answer (``operations.sanitize``), whatever put them there.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from config.errors import ApplicationError
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


def _summary(errors: dict[str, Any]) -> str:
    """``title: This field is required.`` for the first few fields."""
    parts = []
    for field, messages in list(errors.items())[:3]:
        first = messages[0] if isinstance(messages, list) and messages else messages
        if isinstance(first, dict):
            first = "invalid"
        parts.append(f"{field}: {first}")
    return "; ".join(parts) or "Invalid input."


def _error_body(exc: exceptions.APIException, data: Any) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(data, dict):
            return {"code": "invalid", "detail": _summary(data), **data}
        messages = [str(m) for m in (data if isinstance(data, list) else [data])]
        return {"code": "invalid", "detail": " ".join(messages) or "Invalid input."}
    if isinstance(exc, exceptions.NotFound):
        return {"code": "not_found", "detail": "Not found."}
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    detail = data.get("detail", "") if isinstance(data, dict) else data
    return {"code": code, "detail": str(detail)}


def exception_handler(exc, context):
    """Domain errors become 400/403/404/409 with a stable ``code``; Django's
    ``ValidationError`` becomes a 400 with field errors, like a serializer's;
    every DRF error gains ``code`` and ``detail``."""
    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        # A multipart body whose fields exceed DATA_UPLOAD_MAX_MEMORY_SIZE.
        return Response(
            {"code": "request_too_large", "detail": "The request body is too large."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, SuspiciousOperation):
        # Too many fields or files, a malformed multipart body: Django's own refusals.
        return Response(
            {"code": "bad_request", "detail": "The request could not be read."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    # Imported here: rest_framework.views reads DEFAULT_RENDERER_CLASSES (this
    # module) as it loads, so importing it at the top made this module import
    # itself half-done whenever DRF's settings loaded it first (a system check
    # that runs before the URL check does; which runs first is not fixed).
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = _error_body(exc, response.data)
    return response
