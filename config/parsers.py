"""Request parsers that refuse the NUL character, for every API body at once.

PostgreSQL cannot store U+0000 in text (psycopg refuses it before it is sent),
so a NUL anywhere in a body (a payload key, a template variable, a rule's
condition value, a scan job's title) was a 500 there and stored silently on
SQLite. These parsers (``DEFAULT_PARSER_CLASSES``) walk what they parsed and
answer a 400 naming the path of every offending key or value, before any view
or serializer sees the data.
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ValidationError

NUL = "\x00"
NUL_MESSAGE = "The NUL character (\\u0000) is not allowed."
# A body full of NULs is refused all the same; naming the first few is enough.
MAX_PATHS = 20


def _name(key: Any) -> str:
    return str(key).replace(NUL, "\\u0000")


def nul_paths(data: Any, path: str = "") -> list[str]:
    """Where ``data`` holds a NUL: ``payload.name``, ``actions[0].config.url``.
    A key containing one is named itself (escaped)."""
    found: list[str] = []
    if isinstance(data, str):
        if NUL in data:
            found.append(path)
    elif isinstance(data, QueryDict):
        for key, values in data.lists():
            child = f"{path}.{_name(key)}" if path else _name(key)
            if NUL in key or any(isinstance(v, str) and NUL in v for v in values):
                found.append(child)
    elif isinstance(data, dict):
        for key, value in data.items():
            child = f"{path}.{_name(key)}" if path else _name(key)
            if NUL in str(key):
                found.append(child)
            else:
                found += nul_paths(value, child)
    elif isinstance(data, list | tuple):
        for index, item in enumerate(data):
            found += nul_paths(item, f"{path}[{index}]")
    return found


def refuse_nul(data: Any, files: Any = None) -> None:
    """Raise a 400 naming every path (and uploaded file name) holding a NUL."""
    paths = nul_paths(data)
    for key, upload in (files or {}).items():
        if NUL in (getattr(upload, "name", "") or ""):
            paths.append(_name(key))
    if paths:
        detail = {path or "non_field_errors": [NUL_MESSAGE] for path in paths[:MAX_PATHS]}
        raise ValidationError(detail)


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        refuse_nul(data)
        return data


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        refuse_nul(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        refuse_nul(result.data, result.files)
        return result
