"""Rules in the console: the rule with its actions and parents inline, saved
by rule_save (the API's service too), the dry-run page, deactivation."""

from __future__ import annotations

import json
from functools import partial

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.urls import path, reverse
from django.utils.html import format_html

from automation.admin.backtest import backtest_view, rule_tool_view
from automation.admin.base import (
    MaskedConfigAdminMixin,
    ServiceRefused,
    ServiceSaveMixin,
    saved_as,
)
from automation.admin.rule_forms import (
    ActionInlineForm,
    ActionInlineFormSet,
    ConditionBuilder,
    action_fieldsets,
    entity_fields_map,
)
from automation.models import (
    AutomationRule,
    RuleAction,
    RuleDependency,
)
from automation.selectors import rule_has_history
from automation.services import (
    RULE_FIELDS,
    rule_deactivate,
    rule_dry_run,
    rule_parents_check,
    rule_save,
)
from automation.validation import validate_rule
from config.admin_actions import ObjectAction, ObjectActionsMixin
from config.admin_display import JSON_WIDGETS, PrettyJSONWhenReadOnlyMixin
from config.errors import Forbidden
from operations.admin import pretty_json


class ActionInline(MaskedConfigAdminMixin, admin.StackedInline):
    model = RuleAction
    form = ActionInlineForm
    formfield_overrides = JSON_WIDGETS
    formset = ActionInlineFormSet
    extra = 0
    ordering = ["execution_order", "id"]

    def get_fieldsets(self, request, obj=None):
        if self.config_read_only(request, obj):
            fields = [f for f in self.get_fields(request, obj) if f != "config_mode"]
            return [(None, {"fields": fields})]
        return action_fieldsets()

    def get_formset(self, request, obj=None, **kwargs):
        # The model's fields: the typed config fields are added by the form itself.
        kwargs.setdefault("fields", ActionInlineForm.Meta.fields)
        return super().get_formset(request, obj, **kwargs)

    def config_read_only(self, request, obj) -> bool:
        # obj is the rule: its actions are editable only when the rule is too.
        return obj is not None and not (
            self.has_change_permission(request, obj)
            and request.user.has_perm("automation.change_automationrule")
        )


class DependencyFormSet(BaseInlineFormSet):
    """A rule's parents; a set that would close a loop is refused with its path."""

    def clean(self):
        super().clean()
        parents = [
            form.cleaned_data["parent_rule"].pk
            for form in self.forms
            if getattr(form, "cleaned_data", None)
            and not form.cleaned_data.get("DELETE")
            and form.cleaned_data.get("parent_rule")
        ]
        if self.instance.pk and parents:
            try:
                # The admin view runs in one transaction: the graph stays
                # locked until this save commits, as in services.rule_save.
                rule_parents_check(rule=self.instance, parent_ids=parents)
            except ValidationError as error:
                raise ValidationError(error.message_dict["depends_on"]) from None


class DependencyInline(admin.TabularInline):
    model = RuleDependency
    fk_name = "child_rule"
    formset = DependencyFormSet
    extra = 0
    verbose_name = "runs after (parent rule)"
    verbose_name_plural = "runs after (parent rules)"
    autocomplete_fields = ["parent_rule"]


def _given(formset, change: bool) -> bool:
    """A new rule takes its inline rows; an edit replaces them only when changed."""
    return formset is not None and (not change or formset.has_changed())


def _kept_forms(formset):
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None)
        if data and not data.get("DELETE"):
            yield form, data


def _actions_input(formset) -> list[dict]:
    return [
        {
            "name": data["name"],
            "description": form.instance.description,
            "action_type": data["action_type"],
            "action_config": data.get("action_config") or {},
            "execution_order": data["execution_order"],
            "is_active": data["is_active"],
            "template": data.get("template"),
        }
        for form, data in _kept_forms(formset)
    ]


def _parents_input(formset) -> list[AutomationRule]:
    return [data["parent_rule"] for _form, data in _kept_forms(formset) if data.get("parent_rule")]


def _note_changes(formset) -> None:
    """What the admin's history message reads from a saved formset."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for form in formset.initial_forms:
        if getattr(form, "cleaned_data", {}).get("DELETE"):
            formset.deleted_objects.append(form.instance)
        elif form.has_changed():
            formset.changed_objects.append((form.instance, form.changed_data))
    for form in formset.extra_forms:
        if form.has_changed() and not getattr(form, "cleaned_data", {}).get("DELETE"):
            formset.new_objects.append(form.instance)


@admin.register(AutomationRule)
class AutomationRuleAdmin(
    PrettyJSONWhenReadOnlyMixin, ServiceSaveMixin, ObjectActionsMixin, admin.ModelAdmin
):
    list_display = ["name", "entity", "trigger_type", "is_active", "version", "updated_at"]
    list_filter = ["is_active", "trigger_type", "entity"]
    search_fields = ["name", "description"]
    inlines = [ActionInline, DependencyInline]
    formfield_overrides = JSON_WIDGETS
    pretty_json_fields = {"trigger_conditions": "conditions_pretty"}
    readonly_fields = [
        "entity_type",
        "version",
        "next_run_at",
        "last_run_at",
        "created_by",
        "updated_by",
        "deactivated_by",
        "deactivated_at",
        "created_at",
        "updated_at",
        "dry_run_link",
    ]
    fields = [
        "name",
        "description",
        "entity",
        "trigger_type",
        "trigger_conditions",
        "cron_expression",
        "is_active",
        "dry_run_link",
        *readonly_fields[:-1],
    ]
    actions = ["deactivate_rules"]

    class Media:
        # Shows the chosen type's config fields and narrows field choices to the entity.
        js = ["automation/rule_form.js"]

    object_actions = (
        ObjectAction(
            "dry_run",
            "Dry run",
            link=lambda rule: reverse("admin:automation_automationrule_dry_run", args=[rule.pk]),
        ),
    )

    @admin.display(description="trigger conditions")
    def conditions_pretty(self, rule):
        return pretty_json(rule.trigger_conditions)

    @admin.display(description="dry run")
    def dry_run_link(self, rule):
        if not rule.pk:
            return "—"
        url = reverse("admin:automation_automationrule_dry_run", args=[rule.pk])
        backtest = reverse("admin:automation_automationrule_backtest", args=[rule.pk])
        versions = (
            reverse("admin:automation_ruleversion_changelist") + f"?rule__id__exact={rule.pk}"
        )
        return format_html(
            '<a class="button" href="{}">Dry run…</a> <a class="button" href="{}">Backtest…</a> '
            '<a class="button" href="{}">Versions (now v{})</a>',
            url,
            backtest,
            versions,
            rule.version,
        )

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class RuleForm(form):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                if "trigger_conditions" in self.fields:  # not for a reader
                    entity = self.data.get("entity") if self.is_bound else self.instance.entity_id
                    self.fields["trigger_conditions"].widget = ConditionBuilder(
                        fields_map=entity_fields_map(),
                        entity_id=str(entity) if entity else None,
                    )

            def clean_trigger_conditions(self):
                # An empty box means "no conditions" (match every event).
                return self.cleaned_data.get("trigger_conditions") or {}

            def _post_clean(self):
                # The rule's entity type follows its entity (validation needs it).
                if self.cleaned_data.get("entity"):
                    self.instance.entity_type = self.cleaned_data["entity"].entity_type
                super()._post_clean()
                try:
                    validate_rule(self.instance)
                except ValidationError as error:
                    self._update_errors(error)

        return RuleForm

    def save_model(self, request, obj, form, change):
        """Nothing here: the rule is saved with its actions and parents in
        save_related, by one call to the service the API calls too."""

    def save_related(self, request, form, formsets, change):
        inlines = {formset.model: formset for formset in formsets}
        actions, parents = inlines.get(RuleAction), inlines.get(RuleDependency)
        try:
            rule = rule_save(
                actor=request.user,
                rule=form.instance if change else None,
                actions=_actions_input(actions) if _given(actions, change) else None,
                depends_on=_parents_input(parents) if _given(parents, change) else None,
                **{name: form.cleaned_data[name] for name in RULE_FIELDS},
            )
        except ValidationError as error:
            raise ServiceRefused(error) from None
        saved_as(form.instance, rule)
        for formset in formsets:
            _note_changes(formset)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and rule_has_history(obj):
            return False  # history points at it: deactivate instead
        return super().has_delete_permission(request, obj)

    # Operator actions are offered to whoever may view the list; the service
    # refuses those without its permission, and the refusal is shown.
    @admin.action(description="Deactivate selected rules")
    def deactivate_rules(self, request, queryset):
        done = 0
        for rule in queryset.order_by("pk"):
            try:
                rule_deactivate(rule=rule, actor=request.user)
            except Forbidden as refused:
                self.message_user(request, refused.message, messages.ERROR)
                return
            done += 1
        self.message_user(request, f"Deactivated {done} rule(s).", messages.SUCCESS)

    def get_urls(self):
        return [
            path(
                "<int:rule_id>/dry-run/",
                self.admin_site.admin_view(self.dry_run_view),
                name="automation_automationrule_dry_run",
            ),
            path(
                "<int:rule_id>/backtest/",
                self.admin_site.admin_view(partial(backtest_view, self)),
                name="automation_automationrule_backtest",
            ),
            *super().get_urls(),
        ]

    def dry_run_view(self, request, rule_id: int):
        return rule_tool_view(
            self,
            request,
            rule_id,
            form_class=DryRunForm,
            run=lambda rule, data: rule_dry_run(
                rule=rule,
                entity=rule.entity.name,
                object_id=data["object_id"],
                changes=data["changes"] or {},
                actor=request.user,
            ),
            doing="dry-run automation rules",
            template="admin/automation/automationrule/dry_run.html",
            title="Dry run",
            render=lambda result: {
                "result_json": json.dumps(result, indent=2, default=str) if result else ""
            },
        )


class DryRunForm(forms.Form):
    object_id = forms.CharField(label="Row id", max_length=100)
    changes = forms.JSONField(
        required=False,
        help_text='For on_update rules: the change to simulate, e.g. {"name": "New"}.',
    )

    def clean_changes(self):
        changes = self.cleaned_data.get("changes")
        if changes not in (None, "") and not isinstance(changes, dict):
            raise ValidationError("Give an object of field → value.")
        return changes
