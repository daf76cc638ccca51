from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from automation import permissions
from automation.actions import action_registry
from automation.choices import AlertStatus
from automation.deliveries import delivery_retry
from automation.dry_run import rule_dry_run
from automation.engine import replay_event
from automation.models import (
    ActionTemplate,
    Alert,
    AlertAcknowledgement,
    AlertRecipient,
    AlertStatusChange,
    AutomationEvent,
    AutomationExecution,
    AutomationRule,
    Entity,
    EntityType,
    NotificationDelivery,
    NotificationProfile,
    RuleAction,
    RuleDependency,
    TriggerType,
)
from automation.services import (
    RULE_FIELDS,
    TEMPLATE_FIELDS,
    alert_set_status_by_operator,
    lock_and_check_dependencies,
    rule_deactivate,
    rule_has_history,
    rule_save,
    template_save,
)
from automation.validation import (
    action_config_errors,
    entity_model,
    validate_rule,
    validate_template,
)
from automation.webhooks import mask_config, unmask_config
from config.errors import ApplicationError, Forbidden
from operations.admin import ReadOnlyAdminMixin, pretty_json
from operations.sanitize import sanitize_message


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    pass


# --- rules ---------------------------------------------------------------------------------


class MaskedConfigAdminMixin:
    """A JSON config that may hold a webhook URL (``config_field``) is shown
    with the URL's credentials masked: to an editor as the form's initial
    value (sent back unchanged, the stored URL is kept), and to a reader who
    may not change it as a read-only display of the masked config."""

    config_field = "action_config"

    def config_read_only(self, request, obj) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if self.config_read_only(request, obj):
            readonly.append("masked_config")
        return readonly

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if self.config_read_only(request, obj):
            fields = ["masked_config" if f == self.config_field else f for f in fields]
        return list(dict.fromkeys(fields))

    @admin.display(description="config")
    def masked_config(self, obj):
        return pretty_json(mask_config(getattr(obj, self.config_field)))


class MaskedConfigFormMixin:
    """The form side of :class:`MaskedConfigAdminMixin`."""

    config_field = "action_config"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial[self.config_field] = mask_config(getattr(self.instance, self.config_field))

    def unmasked(self, config):
        stored = [getattr(self.instance, self.config_field)] if self.instance.pk else []
        return unmask_config(config, stored=stored)


class ActionInlineForm(MaskedConfigFormMixin, forms.ModelForm):
    action_type = forms.ChoiceField(choices=())

    class Meta:
        model = RuleAction
        fields = [
            "execution_order",
            "name",
            "action_type",
            "template",
            "action_config",
            "is_active",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action_type"].choices = action_registry.choices()

    def clean_action_config(self):
        return self.unmasked(self.cleaned_data.get("action_config") or {})


class ActionInlineFormSet(BaseInlineFormSet):
    """Each action's merged config is checked against the rule's entity."""

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
                form.add_error("action_config", problems)


class ActionInline(MaskedConfigAdminMixin, admin.TabularInline):
    model = RuleAction
    form = ActionInlineForm
    formset = ActionInlineFormSet
    extra = 0
    ordering = ["execution_order", "id"]

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
                lock_and_check_dependencies(rule=self.instance, parent_ids=parents)
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


class ServiceRefused(Exception):
    """A service refused a save after the form was valid (a concurrent edit
    got there first): raised out of the admin view's transaction, which rolls
    back, and shown as a message."""

    def __init__(self, error: ValidationError):
        super().__init__(error)
        self.error = error


class ServiceSaveMixin:
    """For an admin whose ``save_model``/``save_related`` call a service."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRefused as refused:
            self.message_user(request, " ".join(refused.error.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


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


def _saved_as(instance, saved) -> None:
    """The admin's object becomes the row the service saved (the response and
    the history entry name it)."""
    instance.pk = saved.pk
    instance._state.adding = False


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
class AutomationRuleAdmin(ServiceSaveMixin, admin.ModelAdmin):
    list_display = ["name", "entity", "trigger_type", "is_active", "version", "updated_date"]
    list_filter = ["is_active", "trigger_type", "entity"]
    search_fields = ["name", "description"]
    inlines = [ActionInline, DependencyInline]
    readonly_fields = [
        "entity_type",
        "version",
        "next_run_at",
        "last_run_at",
        "created_by",
        "updated_by",
        "deactivated_by",
        "deactivated_at",
        "created_date",
        "updated_date",
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

    @admin.display(description="dry run")
    def dry_run_link(self, rule):
        if not rule.pk:
            return "—"
        url = reverse("admin:automation_automationrule_dry_run", args=[rule.pk])
        return format_html('<a class="button" href="{}">Dry run…</a>', url)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class RuleForm(form):
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
        _saved_as(form.instance, rule)
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
            *super().get_urls(),
        ]

    def dry_run_view(self, request, rule_id: int):
        rule = get_object_or_404(
            AutomationRule.objects.select_related("entity", "trigger_type"), pk=rule_id
        )
        try:
            # The service checks it again; asked first, the page is not shown in vain.
            permissions.require(
                request.user, permissions.DRY_RUN_RULE, doing="dry-run automation rules"
            )
        except Forbidden as refused:
            self.message_user(request, refused.message, messages.ERROR)
            return redirect("admin:automation_automationrule_change", rule.pk)
        result = None
        form = DryRunForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = rule_dry_run(
                    rule=rule,
                    entity=rule.entity.name,
                    object_id=form.cleaned_data["object_id"],
                    changes=form.cleaned_data["changes"] or {},
                    actor=request.user,
                )
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "rule": rule,
            "form": form,
            "result": result,
            "result_json": json.dumps(result, indent=2, default=str) if result else "",
            "title": f"Dry run: {rule.name}",
        }
        return TemplateResponse(request, "admin/automation/automationrule/dry_run.html", context)


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


class ActionTemplateForm(MaskedConfigFormMixin, forms.ModelForm):
    config_field = "default_config"

    class Meta:
        model = ActionTemplate
        fields = list(TEMPLATE_FIELDS)

    def clean_default_config(self):
        return self.unmasked(self.cleaned_data.get("default_config"))

    def _post_clean(self):
        super()._post_clean()
        try:
            validate_template(self.instance)
        except ValidationError as error:
            self._update_errors(error)


@admin.register(ActionTemplate)
class ActionTemplateAdmin(ServiceSaveMixin, MaskedConfigAdminMixin, admin.ModelAdmin):
    form = ActionTemplateForm
    config_field = "default_config"
    list_display = ["name", "action_type", "is_active", "created_date"]
    search_fields = ["name"]
    readonly_fields = ["deactivated_by", "created_by", "created_date"]

    def save_model(self, request, obj, form, change):
        try:
            template = template_save(
                actor=request.user,
                template=obj if change else None,
                **{name: form.cleaned_data[name] for name in TEMPLATE_FIELDS},
            )
        except ValidationError as error:
            raise ServiceRefused(error) from None
        _saved_as(obj, template)


@admin.register(Entity)
class EntityAdmin(admin.ModelAdmin):
    list_display = ["name", "model_label", "entity_type", "is_active", "created_date"]
    readonly_fields = ["name", "model_label", "entity_type", "schema_name", "created_date"]
    fields = ["name", "model_label", "entity_type", "schema_name", "is_active", "created_date"]

    def has_add_permission(self, request):
        return False  # manage.py automation_sync_entities registers them

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(TriggerType)
admin.site.register(EntityType)


@admin.register(NotificationProfile)
class NotificationProfileAdmin(admin.ModelAdmin):
    """Where each person's SMS and push notifications go."""

    list_display = ["user", "phone_number", "has_push_token", "updated_date"]
    search_fields = ["user__username", "user__email", "phone_number"]
    autocomplete_fields = ["user"]
    fields = ["user", "phone_number", "push_token", "updated_date"]
    readonly_fields = ["updated_date"]

    @admin.display(boolean=True, description="push token")
    def has_push_token(self, profile):
        return bool(profile.push_token)


# --- history ---------------------------------------------------------------------------


@admin.register(AutomationEvent)
class AutomationEventAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "entity",
        "trigger",
        "object_pk",
        "status",
        "depth",
        "attempts",
        "created_at",
    ]
    list_filter = ["status", "trigger", "entity"]
    search_fields = ["=id", "object_pk"]
    actions = ["replay"]
    fields = [
        "id",
        "entity",
        "trigger",
        "object_pk",
        "status",
        "depth",
        "caused_by",
        "attempts",
        "note",
        "created_at",
        "processed_at",
        "changed_fields",
        "new_pretty",
        "old_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="new values")
    def new_pretty(self, event):
        return pretty_json(event.new_values)

    @admin.display(description="old values")
    def old_pretty(self, event):
        return pretty_json(event.old_values)

    @admin.action(description="Replay selected events")
    def replay(self, request, queryset):
        for event in queryset.order_by("pk"):
            try:
                counts = replay_event(event.pk, actor=request.user)
            except Forbidden as refused:
                self.message_user(request, refused.message, messages.ERROR)
                return
            except ApplicationError as error:
                self.message_user(request, f"Event {event.pk}: {error.message}", messages.ERROR)
            except ValidationError as error:
                self.message_user(
                    request, f"Event {event.pk}: {' '.join(error.messages)}", messages.ERROR
                )
            except (LookupError, ValueError) as error:
                self.message_user(
                    request,
                    f"Event {event.pk} cannot be replayed: {sanitize_message(str(error))}",
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request, f"Event {event.pk}: {counts or 'nothing to do'}.", messages.INFO
                )


@admin.register(AutomationExecution)
class AutomationExecutionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "rule",
        "rule_version",
        "status",
        "entity_type",
        "object_pk",
        "execution_time_ms",
        "executed_at",
    ]
    list_filter = ["status", "rule"]
    search_fields = ["=id", "object_pk", "rule__name"]
    list_select_related = ["rule"]
    fields = [
        "id",
        "rule",
        "rule_version",
        "event",
        "schedule_slot",
        "entity_type",
        "object_pk",
        "status",
        "error_message",
        "execution_time_ms",
        "depth",
        "executed_at",
        "actions_pretty",
        "trigger_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="actions executed")
    def actions_pretty(self, execution):
        return pretty_json(execution.actions_executed)

    @admin.display(description="trigger data")
    def trigger_pretty(self, execution):
        return pretty_json(execution.trigger_data)


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "channel",
        "recipient",
        "status",
        "attempts",
        "max_attempts",
        "next_attempt_at",
        "updated_date",
    ]
    list_filter = ["status", "channel"]
    search_fields = ["=id", "recipient", "=notification_id"]
    actions = ["retry"]
    fields = [
        "id",
        "notification_id",
        "execution",
        "rule",
        "action",
        "channel",
        "recipient",
        "status",
        "attempts",
        "max_attempts",
        "next_attempt_at",
        "sent_at",
        "delivered_at",
        "failed_at",
        "error_message",
        "provider_pretty",
        "created_date",
        "updated_date",
    ]
    readonly_fields = fields

    @admin.display(description="provider response")
    def provider_pretty(self, delivery):
        return pretty_json(delivery.provider_response)

    @admin.action(description="Retry selected deliveries now")
    def retry(self, request, queryset):
        for delivery in queryset.order_by("pk"):
            try:
                result = delivery_retry(delivery_id=delivery.pk, actor=request.user)
            except Forbidden as refused:
                self.message_user(request, refused.message, messages.ERROR)
                return
            except ApplicationError as error:
                self.message_user(request, error.message, messages.WARNING)
            else:
                self.message_user(
                    request, f"Delivery {result.pk}: {result.status}.", messages.SUCCESS
                )


class RecipientInline(admin.TabularInline):
    model = AlertRecipient
    extra = 0
    fields = ["recipient_type", "user", "group", "created_date"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AcknowledgementInline(RecipientInline):
    model = AlertAcknowledgement
    fields = ["acknowledged_by", "kind", "acknowledged_date", "notes"]
    readonly_fields = fields


class StatusChangeInline(RecipientInline):
    """Who or what moved the alert as a whole, and why."""

    model = AlertStatusChange
    fields = ["created_at", "from_status", "to_status", "actor_name", "reason"]
    readonly_fields = fields
    verbose_name_plural = "status history"


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "title",
        "severity",
        "status",
        "alert_type",
        "source_entity_name",
        "source_entity_id",
        "created_date",
    ]
    list_filter = ["status", "severity", "alert_type"]
    search_fields = ["=id", "title", "alert_type", "source_entity_id"]
    inlines = [RecipientInline, AcknowledgementInline, StatusChangeInline]
    actions = ["acknowledge", "dismiss"]
    fields = [
        "alert_type",
        "severity",
        "title",
        "message",
        "status",
        "source_entity_name",
        "source_entity_id",
        "source_rule",
        "source_execution",
        "expires_date",
        "created_date",
        "updated_date",
        "context_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="context")
    def context_pretty(self, alert):
        return pretty_json(alert.context)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _bulk(self, request, queryset, status):
        done = 0
        for alert in queryset.order_by("pk"):
            try:
                alert_set_status_by_operator(alert=alert, status=status, actor=request.user)
            except Forbidden as refused:
                self.message_user(request, refused.message, messages.ERROR)
                return
            except ApplicationError as error:
                self.message_user(request, error.message, messages.WARNING)
            else:
                done += 1
        self.message_user(request, f"{done} alert(s) {status}.", messages.SUCCESS)

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge(self, request, queryset):
        self._bulk(request, queryset, AlertStatus.ACKNOWLEDGED)

    @admin.action(description="Dismiss selected alerts")
    def dismiss(self, request, queryset):
        self._bulk(request, queryset, AlertStatus.DISMISSED)
