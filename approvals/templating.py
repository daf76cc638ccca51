"""Approval documents: ``{{variable}}`` templates and HTML helpers.

Values are HTML-escaped when they are put into a template, unless they come
from the helpers below (their output is safe HTML, with its own values
escaped), so a ``<script>`` typed into a form arrives at Knox as text.

``{{payload.<field>}}`` names a field of the action's validated payload: it is
filled from the payload itself, never from the caller's variables, so the
wording cannot say one thing while the payload does another.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

VARIABLE = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
# What is left of "{{…}}" once the real placeholders are gone: text that would
# reach Knox as it stands.
_LEFTOVER = re.compile(r"\{\{.*?\}\}|\{\{[^{}<\n]{0,20}", re.S)
PAYLOAD = "payload"
PAYLOAD_PREFIX = "payload."


def template_variables(content: str) -> set[str]:
    """Every placeholder name, ``payload.<field>`` ones included."""
    return set(VARIABLE.findall(content))


def caller_variables(content: str) -> set[str]:
    """The names a caller must give values for (not the ``payload.`` ones)."""
    return {name for name in template_variables(content) if not name.startswith(PAYLOAD_PREFIX)}


def payload_fields(content: str) -> set[str]:
    """The payload fields the template shows (``{{payload.<field>}}``)."""
    return {
        name.removeprefix(PAYLOAD_PREFIX)
        for name in template_variables(content)
        if name.startswith(PAYLOAD_PREFIX)
    }


def template_problems(content: str) -> list[str]:
    """Placeholders the substitution would not fill, so they would reach Knox as
    literal text (``{{두 단어}}``, ``{{}}``, an unclosed ``{{``), and misuse of
    the reserved ``payload`` name. Empty when the template is sound."""
    problems = []
    for fragment in _LEFTOVER.findall(VARIABLE.sub("", content)):
        shown = fragment if len(fragment) <= 40 else f"{fragment[:39]}…"
        problems.append(
            f"{shown} is not a variable: a name is {{{{name}}}} with no spaces or braces in it."
        )
    for name in sorted(template_variables(content)):
        if name in (PAYLOAD, PAYLOAD_PREFIX):
            problems.append(
                f"{{{{{name}}}}}: name a field of the payload, as in {{{{payload.<field>}}}}."
            )
    return problems


def replace_template_variables(content: str, variables: Mapping[str, Any]) -> SafeString:
    """Fill ``{{name}}`` placeholders; a name with no value is a KeyError (the
    caller validates first, so this never submits a half-filled document)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise KeyError(name)
        value = variables[name]
        return str(conditional_escape("" if value is None else value))

    return mark_safe(VARIABLE.sub(fill, content))  # noqa: S308 - every value is escaped above


def approval_template_fill(
    content: str, *, variables: Mapping[str, Any], shown_payload: Mapping[str, Any]
) -> SafeString:
    """The template as it is part of the document Knox receives: the caller's
    variables, and each ``{{payload.<field>}}`` from the payload as approvers
    read it (``payload_value``). The submit and the template's preview in the
    admin both call this, so the preview shows what Knox gets."""
    filled = {
        **variables,
        **{f"{PAYLOAD_PREFIX}{key}": payload_value(value) for key, value in shown_payload.items()},
    }
    return replace_template_variables(content, filled)


def split_sample_variables(
    sample: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A template's sample values as ``(variables, payload fields)``: its
    ``payload.<field>`` samples stand for the payload's fields."""
    variables = {k: v for k, v in sample.items() if not k.startswith(PAYLOAD_PREFIX)}
    payload = {
        k.removeprefix(PAYLOAD_PREFIX): v for k, v in sample.items() if k.startswith(PAYLOAD_PREFIX)
    }
    return variables, payload


def _columns(columns: Sequence[Any]) -> list[tuple[str, str]]:
    pairs = []
    for column in columns:
        if isinstance(column, Mapping):
            pairs.append((column["key"], column.get("label", column["key"])))
        elif isinstance(column, (tuple, list)):
            pairs.append((column[0], column[1]))
        else:
            pairs.append((column, column))
    return pairs


def html_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[Any]) -> SafeString:
    """``columns``: keys, ``(key, label)`` pairs or ``{"key", "label"}`` dicts."""
    pairs = _columns(columns)
    head = format_html_join("", "<th>{}</th>", ((label,) for _, label in pairs))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((row.get(key, ""),) for key, _ in pairs)),)
            for row in rows
        ),
    )
    return format_html(
        '<table border="1" cellpadding="4" style="border-collapse:collapse"><thead><tr>{}</tr></thead>'
        "<tbody>{}</tbody></table>",
        head,
        body,
    )


def html_description_list(items: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> SafeString:
    pairs = items.items() if isinstance(items, Mapping) else items
    return format_html("<dl>{}</dl>", format_html_join("", "<dt>{}</dt><dd>{}</dd>", pairs))


def payload_value(value: Any) -> Any:
    """A payload value as an approver reads it: objects and lists as JSON."""
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else value


def payload_description(payload: Mapping[str, Any]) -> SafeString:
    """The default summary of what will run: the payload's fields, escaped."""
    return html_description_list((key, payload_value(value)) for key, value in payload.items())


def html_list(items: Iterable[Any], ordered: bool = False) -> SafeString:
    tag = "ol" if ordered else "ul"
    return format_html(
        "<{}>{}</{}>", tag, format_html_join("", "<li>{}</li>", ((item,) for item in items)), tag
    )
