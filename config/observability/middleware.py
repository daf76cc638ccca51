"""Request id and HTTP metrics, as the outermost middleware."""

from __future__ import annotations

import time

from config.observability import http_metrics
from config.observability.context import (
    new_request_id,
    reset_request_id,
    sane_request_id,
    set_request_id,
)

REQUEST_ID_HEADER = "X-Request-ID"


class RequestIdMiddleware:
    """Give every request an id: the caller's ``X-Request-ID`` when it is sane
    (a proxy or client that already made one), else a new one. It is on
    ``request.request_id``, in every log record of the request, in the
    ``context`` of runs the request starts, in tasks it queues, and echoed
    in the response's ``X-Request-ID``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
        request.request_id = request_id
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class HttpMetricsMiddleware:
    """Count requests and time them, labelled by the URL pattern's name (a
    bounded set), method and status; requests matching no pattern share one
    label, so scanners probing random paths cannot blow up the series."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        http_metrics.observe(
            view=_view_label(request),
            method=_method_label(request.method),
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _view_label(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unmatched>"
    return match.view_name or match._func_path


def _method_label(method: str | None) -> str:
    return method if method in _METHODS else "other"
