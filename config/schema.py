"""The OpenAPI schema declares the error answers, in one place.

``BureauAutoSchema`` (``DEFAULT_SCHEMA_CLASS``) adds to every operation the
errors it can give, with the ``Error`` shape ``{code, detail, current_state?}``
(a validation error adds one key per field, an array of messages each):

- 400 everywhere (bad query or body, a NUL character);
- 401 and 403 where the view needs authentication;
- 404 where the path or the body names objects, or the list is paginated;
- 409 on the writes of authenticated views (an illegal state change);
- 413 on writes (any body may be too large), 415 where a request body is declared;
- 429 where the view is throttled (the token endpoint);
- 502/503/504 on the operations that call Knox (``KNOX_OPERATIONS``).

An operation's own declaration of a status (``@extend_schema``) wins.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny

# (method, path) → the Knox failures it passes on: 502 Knox refused or answered
# garbage, 503 Knox unreachable, 504 no answer in time.
KNOX_OPERATIONS: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/api/v1/approvals/requests/"): (502, 503),
    ("POST", "/api/v1/approvals/pending-actions/{id}/refresh/"): (502, 503, 504),
}

DESCRIPTIONS = {
    400: "Invalid input: `code`, `detail`, and one key per invalid field with its messages.",
    401: "Not authenticated.",
    403: "Authenticated, but not allowed to do this.",
    404: "Not found (also what you get for an object you may not see).",
    409: "Not allowed in the object's current state (`current_state` says which).",
    413: "The request body is too large.",
    415: "Unsupported media type.",
    429: "Too many attempts; retry after `Retry-After` seconds.",
    502: "Knox refused the request or answered something unreadable.",
    503: "Knox is unreachable.",
    504: "Knox did not answer in time; the outcome is unknown.",
}

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class ErrorSerializer(serializers.Serializer):
    """Every error answer. More keys may follow: field errors (400), the
    requested state (409), ids of what was touched."""

    code = serializers.CharField(help_text="A stable dotted identifier, e.g. `not_found`.")
    detail = serializers.CharField(help_text="What went wrong, for people.")
    current_state = serializers.CharField(
        required=False, help_text="The object's state, when a state change was refused (409)."
    )

    class Meta:
        ref_name = "Error"


class BureauAutoSchema(AutoSchema):
    def _error_statuses(self) -> list[int]:
        view = self.view
        method = self.method.upper()
        writes = method in ("POST", "PUT", "PATCH")
        # Asked only of writes: on a plain APIView GET, guessing a serializer warns.
        has_body = writes and self.get_request_serializer() is not None
        statuses = [400]
        permissions = getattr(view, "permission_classes", [])
        authenticated = bool(getattr(view, "authentication_classes", [])) and not (
            permissions and all(p is AllowAny for p in permissions)
        )
        if authenticated:
            statuses += [401, 403]
        paginated = self._is_list_view() and getattr(view, "pagination_class", None)
        if "{" in self.path or paginated or (authenticated and has_body):
            statuses.append(404)
        if authenticated and method in WRITE_METHODS:
            statuses.append(409)
        if writes:
            statuses.append(413)  # any body, read or not (config.http)
        if has_body:
            statuses.append(415)
        if getattr(view, "throttle_classes", None):
            statuses.append(429)
        statuses += KNOX_OPERATIONS.get((method, self.path), ())
        return statuses

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status_code in self._error_statuses():
            key = str(status_code)
            if key not in responses:
                response = self._get_response_for_code(
                    ErrorSerializer, key, ["application/json"], direction
                )
                response["description"] = DESCRIPTIONS[status_code]
                responses[key] = response
        return responses
