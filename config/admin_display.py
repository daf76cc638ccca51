"""How the console's lists show a state: a coloured badge, and how long the
row has been in it. One colour per meaning across every app, so red reads
the same on pending actions, deliveries, scan jobs, alerts and runs."""

from __future__ import annotations

import json
from datetime import datetime

from django import forms
from django.apps import apps
from django.contrib import admin
from django.db import models
from django.db.models import Model
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.observability.attention import age_text

RED, AMBER, GREEN, BLUE, GREY = "#ba2121", "#b56a00", "#2e7d32", "#3b6ea5", "#6b6b6b"

# A state's meaning: needs a person (red), waiting or retrying (amber), done
# well (green), under way (blue), ended without effect (grey).
COLOURS = {
    **dict.fromkeys(["failed", "bounced", "critical", "rejected"], RED),
    **dict.fromkeys(
        ["submit_unknown", "retrying", "high", "active", "partially_succeeded", "preview"], AMBER
    ),
    **dict.fromkeys(
        [
            "executed",
            "delivered",
            "sent",
            "committed",
            "succeeded",
            "acknowledged",
            "resolved",
            "approved",
        ],
        GREEN,
    ),
    **dict.fromkeys(
        [
            "pending",
            "queued",
            "ready",
            "scanning",
            "assembling",
            "committing",
            "executing",
            "running",
            "medium",
        ],
        BLUE,
    ),
}


def badge(value: str, label: str | None = None):
    """``value`` (a status or severity) as a coloured badge reading ``label``."""
    return format_html(
        '<span class="state-badge" data-state="{}" style="background:{};color:#fff;'
        'padding:1px 7px;border-radius:9px;white-space:nowrap;font-size:.75rem">{}</span>',
        value,
        COLOURS.get(value, GREY),
        label if label is not None else value,
    )


def age(since: datetime | None, *, now: datetime | None = None) -> str:
    """How long ago ``since`` was, in words an on-call person reads aloud."""
    if since is None:
        return "—"
    return age_text(((now or timezone.now()) - since).total_seconds())


def badge_column(field: str, description: str | None = None):
    """A list column showing ``field`` (a choices field) as a badge, sortable by it."""

    @admin.display(description=description or field, ordering=field)
    def column(obj):
        return badge(getattr(obj, field), getattr(obj, f"get_{field}_display")())

    column.__name__ = f"{field}_badge"
    return column


@admin.display(description="in this state for", ordering="-updated_at")
def in_state_for(obj) -> str:
    """Since the row last changed: for these models, its last change of state."""
    return age(obj.updated_at)


def model_named(name: str) -> type[Model] | None:
    """The model an entity name stands for: its table name (as automation's
    entities and alert sources name it) or its ``app.Model`` label."""
    for model in apps.get_models():
        if name in (model._meta.db_table, model._meta.label):
            return model
    return None


def admin_link(model: type[Model] | None, pk, text=None, *, site=admin.site):
    """``text`` (``pk`` by default) linking to the row's change page in the
    console when ``model`` is registered there; plain text otherwise."""
    text = pk if text is None else text
    if model is None or model not in site._registry or pk in (None, ""):
        return text
    opts = model._meta
    try:
        url = reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_change", args=[pk])
    except NoReverseMatch:
        return text
    return format_html('<a href="{}">{}</a>', url, text)


# Ids that results and summaries carry, and the model each one names.
LINKED_IDS = {"tenant_id": "operations.Tenant"}


def id_links(value, *, site=admin.site):
    """Under a result or summary shown as JSON: each top-level id it names
    (``tenant_id``...) as a link to that row's page in the console."""
    if not isinstance(value, dict):
        return ""
    return format_html_join(
        "",
        '<div class="id-link">{}: {}</div>',
        (
            (key, admin_link(model_named(label), value[key], site=site))
            for key, label in LINKED_IDS.items()
            if value.get(key) not in (None, "")
        ),
    )


class PrettyJSONWidget(forms.Textarea):
    """A JSON edit box showing its value indented, one key a line; what the
    operator typed is shown back as typed when it is not valid JSON."""

    def __init__(self, attrs=None):
        super().__init__(
            {"rows": 12, "cols": 80, "style": "font-family: monospace", **(attrs or {})}
        )

    def format_value(self, value):
        try:
            return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
        except (TypeError, ValueError):
            return super().format_value(value)


# An admin's ``formfield_overrides``: its JSON fields edited in indented boxes.
JSON_WIDGETS = {models.JSONField: {"widget": PrettyJSONWidget}}


class PrettyJSONWhenReadOnlyMixin:
    """For a reader who may see a row but not change it: each JSON field named
    in ``pretty_json_fields`` (field name: the admin's display method) is shown
    by that method (pretty-printed) instead of Django's one-line JSON."""

    pretty_json_fields: dict[str, str] = {}

    def _read_only(self, request, obj) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if self._read_only(request, obj):
            fields = [self.pretty_json_fields.get(field, field) for field in fields]
        return list(dict.fromkeys(fields))

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if self._read_only(request, obj):
            readonly += [f for f in self.pretty_json_fields.values() if f not in readonly]
        return readonly
