"""An action's config edited with fields for its type: one declaration per
action type (the keys its ``validate`` reads, each with the form field that
edits it), from which the rule form's inline builds its fields, reads a
stored config into them, writes them back as a config and puts the action's
validation messages on the field they are about.

The JSON box stays as the fallback (``config_mode`` "json"): for a config the
fields cannot show (a placeholder in a choice, an unknown key) and for
whoever prefers it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django import forms
from django.apps import apps
from django.contrib.auth.models import Group
from django.utils.text import capfirst

from automation import conf
from automation.choices import DeliveryChannel, Severity
from automation.entities import concrete_fields, resolve_model
from automation.models import Entity
from automation.registry import entity_registry
from config.admin_display import PrettyJSONWidget


class NotShown(Exception):
    """A stored value the typed field cannot show: the action is edited as JSON."""


def _identity(value: Any) -> Any:
    return value


def _text_in(value: Any) -> str:
    if not isinstance(value, str):
        raise NotShown
    return value


@dataclass(frozen=True)
class ConfigField:
    """One key of an action's config (``a.b`` for a key inside an object),
    edited by the form field ``make(entity)`` returns. ``to_config`` turns
    the field's cleaned value into the config's (None, "", [] and {} leave
    the key out, so an action template's default applies); ``from_config``
    the other way, raising NotShown for a value the field cannot show.
    ``mentions``: the words of a validation message that say it is about
    this key (the key itself by default)."""

    key: str
    make: Callable[[Entity | None], forms.Field]
    to_config: Callable[[Any], Any] = _identity
    from_config: Callable[[Any], Any] = _identity
    mentions: tuple[str, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        return (self.key, *self.mentions)


# --- the kinds of field ------------------------------------------------------------------


def text(key: str, label: str, *, long: bool = False, help_text: str = "", **kw) -> ConfigField:
    widget = (
        forms.Textarea(attrs={"rows": 3, "cols": 60})
        if long
        else forms.TextInput(attrs={"size": 60})
    )
    return ConfigField(
        key,
        lambda _entity: forms.CharField(
            label=capfirst(label), required=False, widget=widget, help_text=help_text
        ),
        from_config=_text_in,
        **kw,
    )


def choice(key: str, label: str, choices: Callable[[], list], **kw) -> ConfigField:
    def shown(value):
        if value not in {str(v) for v, _label in choices()}:
            raise NotShown
        return value

    return ConfigField(
        key,
        lambda _entity: forms.ChoiceField(
            label=capfirst(label), required=False, choices=[("", "---------"), *choices()]
        ),
        from_config=shown,
        **kw,
    )


def checkboxes(key: str, label: str, choices: Callable[[], list], **kw) -> ConfigField:
    def shown(value):
        known = {v for v, _label in choices()}
        if not isinstance(value, list) or not all(isinstance(v, str) and v in known for v in value):
            raise NotShown
        return value

    return ConfigField(
        key,
        lambda _entity: forms.MultipleChoiceField(
            label=capfirst(label),
            required=False,
            choices=choices(),
            widget=forms.CheckboxSelectMultiple,
        ),
        to_config=list,
        from_config=shown,
        **kw,
    )


def _split_names(value: str) -> list[str]:
    return [part.strip() for part in (value or "").replace("\n", ",").split(",") if part.strip()]


def _join_names(value: Any) -> str:
    if not isinstance(value, list) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) and "," not in str(v) for v in value
    ):
        raise NotShown
    return ", ".join(str(v) for v in value)


def names(key: str, label: str, *, help_text: str, **kw) -> ConfigField:
    """A list of names or ids, typed separated by commas."""
    return ConfigField(
        key,
        lambda _entity: forms.CharField(
            label=capfirst(label),
            required=False,
            help_text=help_text,
            widget=forms.TextInput(attrs={"size": 60}),
        ),
        to_config=_split_names,
        from_config=_join_names,
        **kw,
    )


def _groups_in(value: Any) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise NotShown
    wanted = {str(v) for v in value}
    groups = [g for g in Group.objects.order_by("name") if wanted & {g.name, str(g.pk)}]
    if len(groups) != len(wanted):
        raise NotShown  # a role that does not exist: the JSON shows it as it is
    return [g.pk for g in groups]


def roles(key: str, label: str, **kw) -> ConfigField:
    """Roles (Django groups), stored by name."""
    return ConfigField(
        key,
        lambda _entity: forms.ModelMultipleChoiceField(
            label=capfirst(label),
            required=False,
            queryset=Group.objects.order_by("name"),
            widget=forms.CheckboxSelectMultiple,
        ),
        to_config=lambda groups: [g.name for g in groups],
        from_config=_groups_in,
        **kw,
    )


def _int_in(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotShown
    return value


def integer(key: str, label: str, **kw) -> ConfigField:
    return ConfigField(
        key,
        lambda _entity: forms.IntegerField(label=capfirst(label), required=False, min_value=1),
        from_config=_int_in,
        **kw,
    )


def _bool_in(value: Any) -> bool:
    if not isinstance(value, bool):
        raise NotShown
    return value


def flag(key: str, label: str, **kw) -> ConfigField:
    return ConfigField(
        key,
        lambda _entity: forms.BooleanField(label=capfirst(label), required=False),
        to_config=lambda on: True if on else None,
        from_config=_bool_in,
        **kw,
    )


def _object_in(value: Any) -> dict:
    if not isinstance(value, dict):
        raise NotShown
    return value


class OptionalJSONField(forms.JSONField):
    """A JSON box left empty when it has no value (not "null")."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


def json_object(key: str, label: str, *, help_text: str = "", **kw) -> ConfigField:
    return ConfigField(
        key,
        lambda _entity: OptionalJSONField(
            label=capfirst(label),
            required=False,
            help_text=help_text,
            widget=PrettyJSONWidget(attrs={"rows": 4, "cols": 60}),
        ),
        from_config=_object_in,
        **kw,
    )


def writable_fields(entity: Entity | None) -> list[str]:
    """The fields an update_field action may set on ``entity``'s rows."""
    model = entity_model_or_none(entity)
    if model is None:
        return []
    allowed = entity_registry.writable_fields(model._meta.label)
    if allowed is not None:
        return list(allowed)
    return [f.name for f in concrete_fields(model) if f.editable and not f.primary_key]


def entity_model_or_none(entity: Entity | None):
    if entity is None:
        return None
    try:
        return resolve_model(entity.model_label)
    except (LookupError, ValueError):
        return None


def entity_field(key: str, label: str, **kw) -> ConfigField:
    """A field of the rule's entity that rules may write (every entity's,
    grouped, while the rule has none yet; the page's script narrows them)."""

    def make(entity):
        if entity is not None:
            options = [(name, name) for name in writable_fields(entity)]
        else:
            options = [
                (str(e), [(name, name) for name in writable_fields(e)])
                for e in Entity.objects.filter(is_active=True)
            ]
        return forms.ChoiceField(
            label=capfirst(label),
            required=False,
            choices=[("", "---------"), *options],
            widget=forms.Select(attrs={"data-entity-fields": "writable"}),
        )

    return ConfigField(key, make, from_config=_text_in, **kw)


# --- choices read when the form is built -------------------------------------------------


def _approval_handlers() -> list[tuple[str, str]]:
    if not apps.is_installed("approvals"):
        return []
    handlers = import_module("approvals.registry").get_registered_handlers()
    return [(key, key) for key in sorted(handlers)]


def _approval_templates() -> list[tuple[str, str]]:
    if not apps.is_installed("approvals"):
        return []
    template = apps.get_model("approvals", "ApprovalTemplate")
    names_ = template.objects.filter(is_active=True).order_by("name").values_list("name", flat=True)
    return [(name, name) for name in names_]


def _secret_sources() -> list[tuple[str, str]]:
    return [(name, name) for name in conf.webhook_secret_sources()]


USERS_HELP = "Usernames or user ids, separated by commas."


def _recipients() -> tuple[ConfigField, ConfigField]:
    return (
        names(
            "recipients.users",
            "recipients: users",
            help_text=USERS_HELP,
            mentions=("recipients", "user or role"),
        ),
        roles("recipients.roles", "recipients: roles"),
    )


# --- one declaration per action type -----------------------------------------------------

CONFIG_FIELDS: dict[str, tuple[ConfigField, ...]] = {
    "create_alert": (
        text("alert_type", "alert type", help_text="A short code, e.g. tenant_renamed."),
        choice("severity", "severity", lambda: list(Severity.choices)),
        text("title", "title", help_text="{{field}} placeholders are filled from the row."),
        text("message", "message", long=True),
        *_recipients(),
        flag("resolve_prior", "resolve this rule's earlier alerts of this type for the row"),
        integer("expires_in_minutes", "expires after (minutes)"),
        json_object("context", "context", help_text="Extra facts kept with the alert (JSON)."),
    ),
    "send_notification": (
        checkboxes(
            "channels", "channels", lambda: list(DeliveryChannel.choices), mentions=("channel",)
        ),
        *_recipients(),
        text("subject", "subject"),
        text("message", "message", long=True),
        text("webhook_url", "webhook URL", help_text="For the webhook channel."),
        choice("secret_env", "signed with", _secret_sources, mentions=("webhook secret",)),
        integer("max_attempts", "max attempts"),
    ),
    "update_field": (
        entity_field(
            "field", "field", mentions=("cannot be set by a rule", "holds a secret", "relation")
        ),
        text("value", "value", help_text="Converted to the field's type; placeholders allowed."),
    ),
    "seek_approval": (
        choice("action_type", "action to approve", _approval_handlers, mentions=("action type",)),
        text("title", "title"),
        choice(
            "template_name",
            "approval template",
            _approval_templates,
            mentions=("approval template",),
        ),
        names(
            "approvers",
            "approvers",
            help_text="Knox EP IDs in approval order, separated by commas; "
            "empty: the template's approval line.",
        ),
        json_object("variables", "template variables"),
        json_object("payload", "payload", help_text="What the approved action is run with."),
        text(
            "requested_by",
            "requested by",
            help_text="A username; empty: the rule's author.",
            mentions=("to request it", "requester"),
        ),
        text("description", "description", long=True),
    ),
}


def config_fields(action_type: str) -> tuple[ConfigField, ...]:
    return CONFIG_FIELDS.get(action_type, ())


def field_name(action_type: str, spec: ConfigField) -> str:
    """The form field's name: ``create_alert__recipients__users``."""
    return f"{action_type}__{spec.key.replace('.', '__')}"


def typed_field_names(action_type: str) -> list[str]:
    return [field_name(action_type, spec) for spec in config_fields(action_type)]


def all_typed_field_names() -> set[str]:
    return {name for key in CONFIG_FIELDS for name in typed_field_names(key)}


# --- config ⇄ fields ---------------------------------------------------------------------


def _get(config: dict, key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _set(config: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        config = config.setdefault(part, {})
    config[last] = value


def _covered(config: dict, specs: tuple[ConfigField, ...]) -> bool:
    """Every key of ``config`` has a field (an object key only through its parts)."""
    keys = {spec.key for spec in specs}
    parents = {spec.key.split(".")[0] for spec in specs if "." in spec.key}
    for key, value in config.items():
        if key in parents:
            if not isinstance(value, dict) or any(f"{key}.{sub}" not in keys for sub in value):
                return False
        elif key not in keys:
            return False
    return True


def initial_from_config(action_type: str, config: Any) -> dict[str, Any] | None:
    """The typed fields' initial values for ``config``, or None when the
    fields cannot show it (then it is edited as JSON)."""
    specs = config_fields(action_type)
    if not specs or not isinstance(config, dict) or not _covered(config, specs):
        return None
    initial = {}
    try:
        for spec in specs:
            value = _get(config, spec.key)
            if value is not None:
                initial[field_name(action_type, spec)] = spec.from_config(value)
    except NotShown:
        return None
    return initial


def config_from_fields(action_type: str, cleaned: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for spec in config_fields(action_type):
        value = cleaned.get(field_name(action_type, spec))
        if value in (None, "", [], {}):
            continue
        value = spec.to_config(value)
        if value in (None, "", [], {}):
            continue
        _set(config, spec.key, value)
    return config


# --- validation messages onto fields -----------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")


def _mentioned(text_: str, word: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(word)}(?![\w])", text_) is not None


def route_messages(
    action_type: str, messages: list[str], cleaned: dict[str, Any]
) -> tuple[dict[str, list[str]], list[str]]:
    """``messages`` of the action's validation → ({typed field: messages},
    the ones about no field in particular). A message goes to the fields whose
    words it mentions, the most specific words first (``recipients.roles``
    before ``recipients``); an unknown placeholder to the fields that hold it."""
    specs = config_fields(action_type)
    words = sorted(
        ((word, spec) for spec in specs for word in spec.words), key=lambda item: -len(item[0])
    )
    by_field: dict[str, list[str]] = {}
    unplaced = []
    for message in messages:
        rest = message.removeprefix(f"{action_type}: ")
        targets: list[ConfigField] = []
        if "placeholder" in rest:
            wanted = _PLACEHOLDER.findall(rest)
            targets = [
                spec
                for spec in specs
                if any(p in str(cleaned.get(field_name(action_type, spec), "")) for p in wanted)
            ]
        else:
            for word, spec in words:
                if _mentioned(rest, word):
                    if spec not in targets:
                        targets.append(spec)
                    rest = re.sub(rf"(?<![\w.]){re.escape(word)}(?![\w])", " ", rest)
        if not targets:
            unplaced.append(message)
        for spec in targets:
            by_field.setdefault(field_name(action_type, spec), []).append(message)
    return by_field, unplaced
