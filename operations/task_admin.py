"""django-q2's task pages with values in words (issue 12: no Python repr in
the console): a task's arguments, options and result read as indented JSON
(a traceback as text), an absent value as a dash, where django-q2's own
admins show Python's ``str()`` of them. Everything else stays django-q2's."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django_q import admin as q_admin  # registers django-q2's admins first
from django_q.models import Failure, OrmQ, Success

from operations.admin import pretty_json

EMPTY = "—"


def shown(value):
    """A value as an operator reads it: text as it is, the rest as JSON."""
    if value in (None, "", (), [], {}):
        return EMPTY
    if isinstance(value, str):
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', value)
    if isinstance(value, tuple):
        value = list(value)
    return pretty_json(value)


def _shown_column(name: str, description: str):
    """The console's display of ``name``: a task's field, or a queued task's
    method (django-q2 reads those from its signed payload)."""

    @admin.display(description=description)
    def column(task):
        value = getattr(task, name)
        return shown(value() if callable(value) else value)

    column.__name__ = f"{name}_shown"
    return column


# A field django-q2 shows with str(), and what shows it instead.
TASK_VALUES = {
    "args": _shown_column("args", "arguments"),
    "kwargs": _shown_column("kwargs", "keyword arguments"),
    "result": _shown_column("result", "result"),
}
QUEUED_VALUES = {
    **TASK_VALUES,
    "group": _shown_column("group", "group"),
    "q_options": _shown_column("q_options", "options"),
}


class TaskValuesMixin:
    def get_readonly_fields(self, request, obj=None):
        return [TASK_VALUES.get(f, f) for f in super().get_readonly_fields(request, obj)]


class SuccessAdmin(TaskValuesMixin, q_admin.TaskAdmin):
    pass


class FailureAdmin(TaskValuesMixin, q_admin.FailAdmin):
    pass


class QueuedTaskAdmin(q_admin.QueueAdmin):
    fields = [QUEUED_VALUES.get(f, f) for f in q_admin.QueueAdmin.fields]
    readonly_fields = fields[2:]


for model, model_admin in (
    (Success, SuccessAdmin),
    (Failure, FailureAdmin),
    (OrmQ, QueuedTaskAdmin),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
        admin.site.register(model, model_admin)
