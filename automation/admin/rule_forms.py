"""The rule form's guided parts: each action's config as fields for its type
(automation.admin.action_config) with the JSON box as the fallback, the
condition builder (rows of field / operator / value, JSON as the fallback),
and a new action's execution order defaulting to the next number.

Everything is rendered by the server, so a page reloaded with errors shows
the chosen type's fields with their values and messages; the page's small
script (static automation/rule_form.js) only shows the part in use and
narrows field choices to the chosen entity."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Max
from django.forms.models import BaseInlineFormSet
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join, json_script
from django.utils.safestring import mark_safe

from automation.actions import action_registry
from automation.admin.action_config import (
    all_typed_field_names,
    config_fields,
    config_from_fields,
    entity_model_or_none,
    field_name,
    initial_from_config,
    route_messages,
    typed_field_names,
    writable_fields,
)
from automation.admin.base import MaskedConfigFormMixin
from automation.conditions import OPERATORS, VALUELESS_OPERATORS
from automation.entities import concrete_fields
from automation.models import Entity, RuleAction
from automation.validation import action_config_errors, entity_model
from config.admin_display import PrettyJSONWidget

FIELDS, JSON = "fields", "json"
EMPTY_OPTION = mark_safe('<option value="">---------</option>')


class ActionInlineForm(MaskedConfigFormMixin, forms.ModelForm):
    action_type = forms.ChoiceField(choices=())
    # A form sent without this choice (a client that knows only the JSON box) is read as JSON.
    config_mode = forms.ChoiceField(
        label="Edit config",
        choices=[(FIELDS, "with fields for its type"), (JSON, "as JSON")],
        required=False,
        initial=FIELDS,
        widget=forms.RadioSelect(attrs={"class": "config-mode"}),
    )

    class Meta:
        model = RuleAction
        fields = [
            "execution_order",
            "name",
            "action_type",
            "template",
            "is_active",
            "action_config",
        ]

    def __init__(self, *args, entity: Entity | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action_type"].choices = [("", "---------"), *action_registry.choices()]
        self.fields["action_type"].widget.attrs["class"] = "action-type"
        self.fields["action_config"].required = False
        for key, _label in action_registry.choices():
            for spec in config_fields(key):
                self.fields[field_name(key, spec)] = spec.make(entity)
        if self.instance.pk:
            shown = initial_from_config(self.instance.action_type, self.initial["action_config"])
            self.initial["config_mode"] = JSON if shown is None else FIELDS
            self.initial.update(shown or {})

    @cached_property
    def changed_data(self):
        changed = super().changed_data
        if self.is_bound and self.add_prefix("config_mode") not in self.data:
            # A client that sends the JSON box only changed nothing it did not send.
            typed = all_typed_field_names()
            return [name for name in changed if name not in typed and name != "config_mode"]
        return changed

    def mode(self) -> str:
        # Absent (a client that knows only the JSON box): the JSON box.
        return self.cleaned_data.get("config_mode") or JSON

    def clean(self):
        cleaned = super().clean()
        action_type = cleaned.get("action_type") or ""
        typed = self.mode() == FIELDS and config_fields(action_type)
        # Only the part in use is read: the other types' fields, or the JSON
        # box when the fields are used, cannot stop the save.
        read = set(typed_field_names(action_type)) if typed else {"action_config"}
        for name in all_typed_field_names() | {"action_config"}:
            if name not in read:
                self._errors.pop(name, None)
        if typed:
            cleaned["action_config"] = config_from_fields(action_type, cleaned)
        cleaned["action_config"] = self.unmasked(cleaned.get("action_config") or {})
        return cleaned

    def add_config_errors(self, messages: list[str]) -> None:
        """The action's validation messages: on its typed fields when it is
        edited with them, else on the JSON box."""
        action_type = self.cleaned_data["action_type"]
        if self.mode() != FIELDS or not config_fields(action_type):
            self.add_error("action_config", messages)
            return
        by_field, unplaced = route_messages(action_type, messages, self.cleaned_data)
        for name, field_messages in by_field.items():
            self.add_error(name, field_messages)
        if unplaced:
            self.add_error(None, unplaced)


class ActionInlineFormSet(BaseInlineFormSet):
    """Each action's merged config is checked against the rule's entity; a
    new action's execution order is the next number."""

    def entity(self) -> Entity | None:
        return self.instance.entity if self.instance.entity_id else None

    def get_form_kwargs(self, index):
        kwargs = {**super().get_form_kwargs(index), "entity": self.entity()}
        if index is None or index >= self.initial_form_count():
            extra = 0 if index is None else index - self.initial_form_count()
            kwargs["initial"] = {"execution_order": self._last_order() + 1 + extra}
        return kwargs

    def _last_order(self) -> int:
        if not self.instance.pk:
            return 0
        last = RuleAction.objects.filter(rule=self.instance).aggregate(Max("execution_order"))
        return last["execution_order__max"] or 0

    def clean(self):
        super().clean()
        rule = self.instance
        if not rule.entity_id:
            return
        try:
            model = entity_model(rule.entity)
        except ValidationError:
            return
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or not data.get("action_type"):
                continue
            problems = action_config_errors(
                action_type=data["action_type"],
                config=data.get("action_config") or {},
                template=data.get("template"),
                model=model,
            )
            if problems:
                form.add_config_errors(problems)


def action_fieldsets() -> list[tuple[str | None, dict[str, Any]]]:
    """The inline's layout: the action, then one group of fields per type
    (the script shows the chosen type's), then the JSON box."""
    return [
        (
            None,
            {
                "fields": [
                    ("execution_order", "name", "is_active"),
                    ("action_type", "template"),
                    "config_mode",
                ]
            },
        ),
        *(
            (
                f"{label}: config",
                {
                    "fields": typed_field_names(key),
                    "classes": ["action-config", f"action-config-{key}"],
                },
            )
            for key, label in action_registry.choices()
            if typed_field_names(key)
        ),
        ("Config as JSON", {"fields": ["action_config"], "classes": ["action-config-json"]}),
    ]


# --- conditions --------------------------------------------------------------------------


def entity_fields_map() -> dict[str, dict[str, list[str]]]:
    """entity id → the names its conditions may use and the ones rules may write."""
    found = {}
    for entity in Entity.objects.filter(is_active=True):
        model = entity_model_or_none(entity)
        if model is None:
            continue
        found[str(entity.pk)] = {
            "fields": [f.name for f in concrete_fields(model)],
            "writable": writable_fields(entity),
        }
    return found


def _shown_value(operator: Any, value: Any) -> str | None:
    """A condition's value as the builder's text box shows it, or None."""
    if operator in VALUELESS_OPERATORS:
        return ""
    if operator == "in":
        if isinstance(value, list) and all(
            isinstance(v, str | int | float) and "," not in str(v) for v in value
        ):
            return ", ".join(str(v) for v in value)
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    return None


def builder_rows(conditions: Any) -> list[tuple[str, str, str]] | None:
    """(field, operator, value text) per condition, or None when the builder
    cannot show them (then they are edited as JSON)."""
    if conditions in ({}, None, ""):
        return []
    if not isinstance(conditions, dict) or set(conditions) != {"field_conditions"}:
        return None
    items = conditions["field_conditions"]
    if not isinstance(items, list):
        return None
    rows = []
    for item in items:
        if not isinstance(item, dict) or not set(item) <= {"field_name", "operator", "value"}:
            return None
        field, operator = item.get("field_name"), item.get("operator")
        if not isinstance(field, str) or not isinstance(operator, str):
            return None
        shown = _shown_value(operator, item.get("value"))
        if shown is None:
            return None
        rows.append((field, operator, shown))
    return rows


_ROW_KEY = re.compile(r"^(?P<name>.+)__(?P<index>\d+)__field$")


class ConditionBuilder(forms.Widget):
    """trigger_conditions as rows of field / operator / value, with the JSON
    box beside them: ``<name>__mode`` says which one the form sends ("builder"
    or "json"; absent: the JSON box, as before the builder)."""

    def __init__(self, *, fields_map: dict, entity_id: str | None, attrs=None):
        super().__init__(attrs)
        self.fields_map = fields_map
        self.entity_id = entity_id
        self.json_box = PrettyJSONWidget()
        self.posted_mode: str | None = None

    def value_from_datadict(self, data, files, name):
        self.posted_mode = data.get(f"{name}__mode")
        if self.posted_mode != "builder":
            return data.get(name)
        indexes = sorted(
            int(m["index"]) for key in data if (m := _ROW_KEY.match(key)) and m["name"] == name
        )
        conditions = []
        for index in indexes:
            field = (data.get(f"{name}__{index}__field") or "").strip()
            operator = (data.get(f"{name}__{index}__operator") or "").strip()
            value = (data.get(f"{name}__{index}__value") or "").strip()
            if not (field or operator or value):
                continue  # an empty row
            condition: dict[str, Any] = {"field_name": field, "operator": operator}
            if operator == "in":
                condition["value"] = [v.strip() for v in value.split(",") if v.strip()]
            elif operator not in VALUELESS_OPERATORS:
                condition["value"] = value
            conditions.append(condition)
        return json.dumps({"field_conditions": conditions} if conditions else {})

    def value_omitted_from_data(self, data, files, name):
        return name not in data and f"{name}__mode" not in data

    def _field_select(self, name: str, index: int, selected: str):
        if self.entity_id in self.fields_map:
            groups = [(None, self.fields_map[self.entity_id]["fields"])]
        else:
            labels = dict(Entity.objects.values_list("pk", "name"))
            groups = [(labels.get(int(pk), pk), v["fields"]) for pk, v in self.fields_map.items()]
        known = {f for _label, fields in groups for f in fields}
        options = EMPTY_OPTION
        if selected and selected not in known:
            options += format_html('<option value="{}" selected>{}</option>', selected, selected)
        for label, fields in groups:
            inner = format_html_join(
                "",
                '<option value="{}"{}>{}</option>',
                ((f, " selected" if f == selected else "", f) for f in fields),
            )
            options += (
                inner
                if label is None
                else format_html('<optgroup label="{}">{}</optgroup>', label, inner)
            )
        return format_html(
            '<select name="{}__{}__field" data-entity-fields="fields" aria-label="field">{}</select>',
            name,
            index,
            options,
        )

    def _operator_select(self, name: str, index: int, selected: str):
        operators = list(OPERATORS)
        if selected and selected not in operators:
            operators.insert(0, selected)
        options = EMPTY_OPTION + format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            ((op, " selected" if op == selected else "", op.replace("_", " ")) for op in operators),
        )
        return format_html(
            '<select name="{}__{}__operator" aria-label="operator">{}</select>',
            name,
            index,
            options,
        )

    def _row(self, name: str, index: int, field: str, operator: str, value: str):
        return format_html(
            '<tr class="condition-row"><td>{}</td><td>{}</td>'
            '<td><input type="text" name="{}__{}__value" value="{}" size="30" aria-label="value"></td>'
            '<td><button type="button" class="condition-remove">Remove</button></td></tr>',
            self._field_select(name, index, field),
            self._operator_select(name, index, operator),
            name,
            index,
            value,
        )

    def render(self, name, value, attrs=None, renderer=None):
        try:
            parsed = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            parsed = value  # what the operator typed, not JSON: the JSON box shows it
        rows = builder_rows(parsed) if not isinstance(parsed, str) else None
        mode = "builder" if rows is not None and self.posted_mode != "json" else "json"
        rows = [*(rows or []), ("", "", "")]  # one empty row to fill in
        body = format_html_join(
            "", "{}", ((self._row(name, i, *row),) for i, row in enumerate(rows))
        )
        return format_html(
            '<div class="condition-builder" data-name="{name}">'
            '<p class="condition-mode">'
            '<label><input type="radio" name="{name}__mode" value="builder"{builder}> '
            "conditions</label> "
            '<label><input type="radio" name="{name}__mode" value="json"{json}> as JSON</label>'
            "</p>"
            '<div class="condition-panel" data-panel="builder">'
            "<table><thead><tr><th>field</th><th>operator</th><th>value</th><th></th></tr></thead>"
            "<tbody>{body}</tbody></table>"
            '<p><button type="button" class="condition-add">Add a condition</button></p>'
            '<p class="help">All must match; no condition: every event matches. '
            "<em>in</em>: values separated by commas; <em>is null</em> and <em>is not null</em> "
            "take no value; <em>older than</em>, <em>newer than</em> and <em>within next</em> "
            "an interval such as 7d or 30m; <em>changed from/to</em> only on update.</p>"
            "</div>"
            '<div class="condition-panel" data-panel="json">{box}</div>'
            "{fields_map}</div>",
            name=name,
            builder=" checked" if mode == "builder" else "",
            json=" checked" if mode == "json" else "",
            body=body,
            box=self.json_box.render(name, value, attrs, renderer),
            fields_map=json_script(self.fields_map, "entity-fields-map"),
        )
