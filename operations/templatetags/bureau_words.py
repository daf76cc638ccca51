"""``{{ value|in_words }}``: a value as an operator reads it in the console,
never a Python repr (``None``, ``['a', 'b']``, ``{'k': 1}``, ``True``)."""

from __future__ import annotations

import json

from django import template

register = template.Library()


@register.filter
def in_words(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(in_words(item) for item in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)
