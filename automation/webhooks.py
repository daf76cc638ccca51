"""Webhook URLs as readers see them: credentials masked, and given back
unmasked when a client returns what it was shown."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

MASK = "***"
# Query keys whose values are credentials (token=, api_key=, sig=, …).
_SECRET_QUERY_KEY = re.compile(
    r"(?i)pass|pwd|secret|token|key|sig|auth|credential|session|code|otp|jwt"
)


def _mask_query(query: str) -> str:
    parts = []
    for part in query.split("&"):
        key, sep, _value = part.partition("=")
        if sep and _SECRET_QUERY_KEY.search(unquote_plus(key)):
            part = f"{key}={MASK}"
        parts.append(part)
    return "&".join(parts)


def mask_webhook_url(url: Any) -> Any:
    """The URL as readers see it: ``http://***@host/path?token=***``. Its
    user and password, and the values of secret-looking query (and fragment)
    keys, are masked; the rest is kept as written. Anything that is not text
    is returned as it is."""
    if not isinstance(url, str):
        return url
    try:
        scheme, netloc, path, query, fragment = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host: show none of it
        return MASK
    if not netloc and "@" in url:
        return MASK  # not a URL we can take apart, and it may hold credentials
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    return urlunsplit((scheme, netloc, path, _mask_query(query), _mask_query(fragment)))


def is_masked(url: Any) -> bool:
    return isinstance(url, str) and MASK in url


def mask_config(config: Any) -> Any:
    """An action config as readers see it: its webhook_url masked."""
    if isinstance(config, dict) and "webhook_url" in config:
        return {**config, "webhook_url": mask_webhook_url(config["webhook_url"])}
    return config


def unmask_config(config: Any, *, stored: list[Any]) -> Any:
    """``config`` as a client sent it back after reading it masked: a masked
    webhook_url that is the mask of one of the ``stored`` configs' URLs
    becomes that URL again, so an edit that did not touch the URL keeps it.
    A masked URL matching none is left as it is (validation refuses it)."""
    if not (isinstance(config, dict) and is_masked(config.get("webhook_url"))):
        return config
    for previous in stored:
        url = previous.get("webhook_url") if isinstance(previous, dict) else None
        if isinstance(url, str) and mask_webhook_url(url) == config["webhook_url"]:
            return {**config, "webhook_url": url}
    return config


def webhook_recipient(url: str) -> str:
    """The URL as stored on the delivery row: no credentials, no query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))[:500]
