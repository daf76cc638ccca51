"""Posting JSON to a gateway, and reading its answer the same way for every
channel: 2xx accepted; 408, 425, 429 and 5xx (or no answer) may pass; 401 and
403 mean our key is wrong; any other 4xx is a refusal for good (a bounce)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from automation.backends import DeliveryError, PermanentRefusal, TemporaryFailure
from operations.sanitize import sanitize_message

RETRYABLE_HTTP = {408, 425, 429}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_session = requests.Session()


def sanitized_response(response: requests.Response) -> dict[str, Any]:
    return {
        "status_code": response.status_code,
        "reason": sanitize_message(response.reason or "", limit=100),
        "body": sanitize_message(response.text[:2000], limit=300),
        "content_type": sanitize_message(response.headers.get("Content-Type", ""), limit=100),
    }


def json_answer(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def check_gateway(*, url: str, key: str, what: str, url_setting: str, key_setting: str) -> None:
    """A gateway is configured: an https URL (plain http only to this
    machine, as in tests) and a key."""
    if not url:
        raise DeliveryError(f"{url_setting} is not set: there is no {what} to send to.")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise DeliveryError(f"{url_setting} is not a URL.") from None
    if parts.scheme != "https" and not (
        parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    ):
        raise DeliveryError(
            f"{url_setting} must be an https URL (plain http only to a {what} on this machine)."
        )
    if not key:
        raise DeliveryError(f"{key_setting} is not set: the {what} needs its key.")


def post_json(
    *, url: str, key: str, body: dict[str, Any], timeout: float, what: str
) -> tuple[requests.Response, dict[str, Any]]:
    """POST ``body`` with ``key`` as a bearer token; the response and its
    sanitised summary when the gateway accepted it (2xx), else the matching
    :class:`DeliveryError`. Messages name the status, never the URL or key."""
    headers = {
        "Authorization": f"Bearer {key}",
        "User-Agent": "Bureau-Automation/1",
        "Accept": "application/json",
    }
    try:
        response = _session.post(url, json=body, headers=headers, timeout=timeout)
    except requests.RequestException as error:
        raise TemporaryFailure(
            f"No answer from the {what} ({type(error).__name__}).",
            provider_response={"exception": type(error).__name__},
        ) from None
    provider = sanitized_response(response)
    code = response.status_code
    if 200 <= code < 300:
        return response, provider
    if code >= 500 or code in RETRYABLE_HTTP:
        raise TemporaryFailure(f"HTTP {code} from the {what}.", provider_response=provider)
    if code in (401, 403):
        raise DeliveryError(
            f"The {what} refused our key (HTTP {code}); check its key setting.",
            provider_response=provider,
        )
    raise PermanentRefusal(
        f"The {what} refused the message for good (HTTP {code}).", provider_response=provider
    )
