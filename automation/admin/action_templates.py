"""Action templates in the console, saved by template_save."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from automation.admin.base import (
    MaskedConfigAdminMixin,
    MaskedConfigFormMixin,
    ServiceRefused,
    ServiceSaveMixin,
    saved_as,
)
from automation.models import (
    ActionTemplate,
)
from automation.services import (
    TEMPLATE_FIELDS,
    template_save,
)
from automation.validation import (
    validate_template,
)
from config.admin_display import JSON_WIDGETS


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
    formfield_overrides = JSON_WIDGETS
    config_field = "default_config"
    list_display = ["name", "action_type", "is_active", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["deactivated_by", "created_by", "created_at"]

    def save_model(self, request, obj, form, change):
        try:
            template = template_save(
                actor=request.user,
                template=obj if change else None,
                **{name: form.cleaned_data[name] for name in TEMPLATE_FIELDS},
            )
        except ValidationError as error:
            raise ServiceRefused(error) from None
        saved_as(obj, template)
