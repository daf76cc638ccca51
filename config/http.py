"""HTTP-level guards and error pages for the API: JSON ``{code, detail}``
under ``/api/``, whatever goes wrong before or around a view.

- ``ApiRequestGuardMiddleware`` refuses, before any view runs, a non-multipart
  body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (413; DRF's JSON parser
  reads the stream itself, so Django's own limit never applied to it) and a
  NUL character in the query string (400 naming the parameter). Multipart
  bodies are left to Django (its limit applies to their non-file parts) and to
  the views that take uploads (the scan agent's batches have their own limit,
  ``SCANNING_MAX_BATCH_BYTES``).
- ``bad_request`` / ``permission_denied`` / ``page_not_found`` / ``server_error``
  are Django's ``handler400/403/404/500``: JSON under ``/api/``, Django's HTML
  pages elsewhere (the admin).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views import defaults

from config.parsers import NUL, NUL_MESSAGE

API_PREFIX = "/api/"


def is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def error_response(status: int, code: str, detail: str, extra: dict | None = None) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail, **(extra or {})}, status=status)


def too_large(length: int | None, limit: int) -> JsonResponse:
    size = f"{length} bytes" if length is not None else "too large"
    return error_response(
        413,
        "request_too_large",
        f"The request body is {size}; the limit is {limit} bytes.",
    )


class ApiRequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api(request):
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    @staticmethod
    def _refusal(request) -> JsonResponse | None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        content_type = request.META.get("CONTENT_TYPE", "")
        if limit is not None and not content_type.startswith("multipart/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return too_large(length, limit)
        bad = [
            key.replace(NUL, "\\u0000")
            for key, values in request.GET.lists()
            if NUL in key or any(NUL in value for value in values)
        ]
        if bad:
            return error_response(
                400,
                "invalid",
                f"Invalid query parameter: {bad[0]}: {NUL_MESSAGE}",
                {key: [NUL_MESSAGE] for key in bad[:20]},
            )
        return None


def bad_request(request, exception=None):
    if not is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return too_large(None, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    return error_response(400, "bad_request", "The request could not be read.")


def permission_denied(request, exception=None):
    if not is_api(request):
        return defaults.permission_denied(request, exception)
    return error_response(
        403, "permission_denied", "You do not have permission to perform this action."
    )


def page_not_found(request, exception=None):
    if not is_api(request):
        return defaults.page_not_found(request, exception)
    return error_response(404, "not_found", "Not found.")


def server_error(request):
    if not is_api(request):
        return defaults.server_error(request)
    return error_response(500, "server_error", "Something went wrong on our side.")
