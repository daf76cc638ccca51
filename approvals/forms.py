"""The approvals admin's forms. They validate input; every write goes through
``approvals.services``, as from the API and the commands."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from rest_framework import fields as drf
from rest_framework import relations
from rest_framework.serializers import BaseSerializer

from approvals.models import ApprovalTemplate
from approvals.registry import ActionHandler, get_registered_handlers
from approvals.selectors import approval_template_list_active
from approvals.services import knox_profile_set
from approvals.templating import VARIABLE, caller_variables, template_variables
from config.errors import error_text

VARIABLE_FIELD = "variable__"  # a template variable's form field: variable__<name>
PAYLOAD_FIELD = "payload__"  # a payload field's form field: payload__<name>
# What a re-rendered form keeps of what was typed (a GET's query, a refresh's POST).
_NOT_CARRIED = {"csrfmiddlewaretoken", "shown_for", "_refresh"}
_CHOICES_AT_MOST = 200  # a related field with more rows is typed, not chosen


class ApprovalRequestForm(forms.Form):
    """Request an approval. Its fields follow what is chosen: one per variable of
    the template, its sample value filled in, and one per field of the action
    type's payload serializer (a JSON box when the handler declares none).

    A GET with ``?template=<id>&action_type=<type>`` renders the fields for
    those (``initial``). The fields a POST was rendered with are named in
    ``shown_for``: a POST whose choice changed since is ``stale`` and is shown
    again with the right fields, never requested with blank ones."""

    template = forms.ModelChoiceField(
        queryset=approval_template_list_active(), empty_label="(choose a template)"
    )
    title = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 60}))
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Shown to the approvers above the template's text.",
    )
    action_type = forms.ChoiceField(choices=(), help_text="What Bureau runs once Knox approves.")
    approvers = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="Approvers' Knox EP IDs, comma-separated, in approval order. "
        "Leave empty to use the template's default approval line.",
    )
    deadline = forms.CharField(
        required=False,
        max_length=20,
        help_text="How long Knox has to decide, e.g. 2d or 4h. Leave empty for the template's "
        "decision deadline.",
    )
    shown_for = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, data=None, *, user, initial: Mapping[str, Any] | None = None):
        super().__init__(data, initial=initial)
        self.user = user
        self.fields["action_type"].choices = [
            ("", "(choose an action type)"),
            *((key, key) for key in sorted(get_registered_handlers())),
        ]
        self.chosen_template: ApprovalTemplate | None = self._chosen_template()
        self.chosen_handler: ActionHandler | None = get_registered_handlers().get(
            self._raw("action_type") or ""
        )
        self.variable_names: list[str] = []
        self.payload_names: list[str] = []  # serializer fields; [] with the JSON box
        sample = {}
        if self.chosen_template is not None:
            sample = self.chosen_template.sample_variables or {}
            self._add_variable_fields(self.chosen_template, sample)
            default_line = ", ".join(a["ep_id"] for a in self.chosen_template.default_approvers)
            if default_line:
                self.fields["approvers"].help_text = (
                    "Approvers' Knox EP IDs, comma-separated, in approval order. Leave empty "
                    f"to use the template's default approval line: {default_line}."
                )
        if self.chosen_handler is not None:
            self._add_payload_fields(self.chosen_handler, sample)
        self.fields["shown_for"].initial = self.shown_for_key()

    @classmethod
    def initial_from(cls, query) -> dict[str, Any]:
        """What a GET's query or a refreshed POST said, as a new form's initial values."""
        return {
            key: values if len(values) > 1 else values[0]
            for key, values in query.lists()
            if key not in _NOT_CARRIED
        }

    # --- which fields ---------------------------------------------------------------

    def _raw(self, name: str) -> Any:
        return self.data.get(name) if self.is_bound else self.initial.get(name)

    def _chosen_template(self) -> ApprovalTemplate | None:
        try:
            return self.fields["template"].to_python(self._raw("template"))
        except ValidationError:
            return None

    def shown_for_key(self) -> str:
        """The choice the fields are for, as chosen (a choice that is not one
        is the chosen field's error, not a change of fields)."""
        return f"{self._raw('template') or ''}|{self._raw('action_type') or ''}"

    @property
    def stale(self) -> bool:
        """Posted from a page whose fields were for another choice."""
        return self.is_bound and self.data.get("shown_for") != self.shown_for_key()

    def _add_variable_fields(self, template: ApprovalTemplate, sample: Mapping[str, Any]) -> None:
        expected = caller_variables(template.content)
        # In the order the template uses them, each once.
        names = [n for n in dict.fromkeys(VARIABLE.findall(template.content)) if n in expected]
        for name in names:
            value = sample.get(name, "")
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            long = len(text) > 60 or "\n" in text
            self.fields[f"{VARIABLE_FIELD}{name}"] = forms.CharField(
                label=name,
                required=False,
                initial=text,
                strip=False,
                widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
                if long
                else forms.TextInput(attrs={"size": 60}),
                help_text=f"{{{{{name}}}}} in the template (the sample value is filled in).",
            )
        self.variable_names = names

    def _add_payload_fields(self, handler: ActionHandler, sample: Mapping[str, Any]) -> None:
        if handler.payload_serializer is None:
            self.fields["payload"] = forms.JSONField(
                initial=dict,
                required=False,
                widget=forms.Textarea(attrs={"rows": 6, "cols": 60}),
                help_text="JSON object the handler runs with once approved "
                "(this action type declares no payload fields).",
            )
            return
        serializer = handler.payload_serializer(context={"user": self.user})
        for name, field in serializer.fields.items():
            if field.read_only or isinstance(field, drf.HiddenField):
                continue  # nothing for the requester to give
            initial = sample.get(f"payload.{name}", _default(field))
            self.fields[f"{PAYLOAD_FIELD}{name}"] = payload_form_field(field, initial=initial)
            self.payload_names.append(name)

    # --- for the template -----------------------------------------------------------

    def document_fields(self) -> list[forms.BoundField]:
        return [
            self["template"],
            self["title"],
            *(self[f"{VARIABLE_FIELD}{n}"] for n in self.variable_names),
            self["description"],
            self["deadline"],
        ]

    def action_fields(self) -> list[forms.BoundField]:
        names = [f"{PAYLOAD_FIELD}{n}" for n in self.payload_names]
        if "payload" in self.fields:
            names = ["payload"]
        return [self["action_type"], *(self[name] for name in names)]

    def approver_ep_ids(self) -> list[str]:
        raw = self._raw("approvers") or ""
        return [a.strip() for a in str(raw).split(",") if a.strip()]

    # --- what the service gets ------------------------------------------------------

    def clean(self):
        data = super().clean()
        data["variables"] = {
            name: data.get(f"{VARIABLE_FIELD}{name}", "") for name in self.variable_names
        }
        if "payload" in self.fields:
            data["payload"] = data.get("payload") if data.get("payload") is not None else {}
        else:
            given = {name: f"{PAYLOAD_FIELD}{name}" for name in self.payload_names}
            data["payload"] = {
                name: _json_value(data[key])
                for name, key in given.items()
                if key in data and not _left_empty(data[key], self.fields[key])
            }
        data["approvers"] = self.approver_ep_ids()
        return data

    def add_service_errors(self, error: ValidationError) -> None:
        """The service's field errors on the fields they are about: a payload
        field's on its field (``payload.<name>``), the rest on the form."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error_text(error, sep="; "))
            return
        for key, messages in error.message_dict.items():
            target, prefix = self._field_for(key)
            for message in messages:
                self.add_error(target, f"{prefix}{message}")

    def _field_for(self, key: str) -> tuple[str | None, str]:
        """``(form field, prefix)`` for an error the service gave under ``key``."""
        if key == "template_name":
            return "template", ""
        if key.startswith("payload."):
            name = key.removeprefix("payload.")
            if f"{PAYLOAD_FIELD}{name}" in self.fields:
                return f"{PAYLOAD_FIELD}{name}", ""
            return ("payload", f"{name}: ") if "payload" in self.fields else (None, f"{key}: ")
        if key in ("variables", "user"):
            return None, ""
        if key in self.fields:
            return key, ""
        return None, f"{key}: "


def _default(field: drf.Field) -> Any:
    default = field.default
    return None if default is drf.empty or callable(default) else default


def _left_empty(value: Any, form_field: forms.Field) -> bool:
    """An optional field left blank: not sent, so the serializer's default applies."""
    return not form_field.required and value in form_field.empty_values


def payload_form_field(field: drf.Field, *, initial: Any = None) -> forms.Field:
    """The form field for one field of a payload serializer. The serializer
    still validates the whole payload in the service; this is for the person
    typing it (a select for choices and references, numbers, dates)."""
    common = {
        "label": field.label or field.field_name.replace("_", " ").capitalize(),
        "required": field.required,
        "help_text": field.help_text or "",
        "initial": initial,
    }
    if isinstance(field, relations.ManyRelatedField):
        choices = _related_choices(field.child_relation)
        if choices is not None:
            return forms.MultipleChoiceField(choices=choices, **common)
        return forms.JSONField(**common)
    if isinstance(field, relations.RelatedField):
        choices = _related_choices(field)
        if choices is None:
            return forms.CharField(**common)
        return forms.ChoiceField(choices=[("", "---------"), *choices], **common)
    if isinstance(field, drf.BooleanField):
        if field.allow_null:
            return forms.NullBooleanField(**{**common, "required": False})
        return forms.BooleanField(**{**common, "required": False})
    if isinstance(field, drf.MultipleChoiceField):
        return forms.MultipleChoiceField(choices=list(field.choices.items()), **common)
    if isinstance(field, drf.ChoiceField):
        return forms.ChoiceField(choices=[("", "---------"), *field.choices.items()], **common)
    if isinstance(field, drf.IntegerField):
        return forms.IntegerField(min_value=field.min_value, max_value=field.max_value, **common)
    if isinstance(field, drf.FloatField):
        return forms.FloatField(min_value=field.min_value, max_value=field.max_value, **common)
    if isinstance(field, drf.DecimalField):
        return forms.DecimalField(
            max_digits=field.max_digits, decimal_places=field.decimal_places, **common
        )
    if isinstance(field, drf.DateTimeField):
        return forms.DateTimeField(
            widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            **common,
        )
    if isinstance(field, drf.DateField):
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if isinstance(field, drf.EmailField):
        return forms.EmailField(**common)
    if isinstance(field, drf.URLField):
        return forms.URLField(**common)
    if isinstance(field, (drf.ListField, drf.DictField, drf.JSONField, BaseSerializer)):
        # lists, objects and nested serializers: typed as JSON
        return forms.JSONField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), **common)
    if isinstance(field, drf.CharField):
        long = field.max_length is None or field.max_length > 255
        return forms.CharField(
            max_length=field.max_length,
            min_length=field.min_length,
            widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
            if long
            else forms.TextInput(attrs={"size": 60}),
            **common,
        )
    return forms.CharField(**common)  # the serializer says whether the text is right


def _related_choices(field: relations.RelatedField) -> list[tuple[str, str]] | None:
    """``(value, label)`` for each object the field may name (its queryset sees
    the requester), or None when it is not a slug or primary key, or there
    are too many to list."""
    if not isinstance(field, (relations.SlugRelatedField, relations.PrimaryKeyRelatedField)):
        return None
    rows = list(field.get_queryset()[: _CHOICES_AT_MOST + 1])
    if len(rows) > _CHOICES_AT_MOST:
        return None
    choices = []
    for row in rows:
        value = str(field.to_representation(row))
        label = str(row)
        choices.append((value, label if label == value else f"{label} ({value})"))
    return choices


def _json_value(value: Any) -> Any:
    """A cleaned form value as the payload's JSON has it."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return value


class ApprovalTemplateForm(forms.ModelForm):
    class Meta:
        model = ApprovalTemplate
        fields = [
            "name",
            "description",
            "content",
            "sample_variables",
            "default_approvers",
            "is_active",
            "decision_deadline",
            "reminders_before",
            "reminder_recipients",
            "reminder_channels",
            "deadline_policy",
            "escalation_recipients",
        ]

    def clean(self):
        data = super().clean()
        content, sample = data.get("content"), data.get("sample_variables")
        if content and isinstance(sample, dict):
            missing = sorted(template_variables(content) - sample.keys())
            if missing:
                self.add_error("sample_variables", f"Give a sample value for: {', '.join(missing)}")
        return data


class KnoxProfileFormSet(BaseInlineFormSet):
    """The EP ID inline on the user admin. The form validates it as the model
    does (a duplicate is a field error, and then nothing of the user's page is
    saved); the save is ``knox_profile_set``'s, not the form's."""

    def save_new(self, form, commit=True):
        return knox_profile_set(user=self.instance, ep_id=form.cleaned_data.get("ep_id"))

    def save_existing(self, form, obj, commit=True):
        return knox_profile_set(user=self.instance, ep_id=form.cleaned_data.get("ep_id"))
