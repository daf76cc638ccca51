"""What the automation admins share: read-only history pages, configs shown
with webhook credentials masked, and saving through a service."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect

from automation.webhooks import mask_config, unmask_config
from operations.admin import ReadOnlyAdminMixin, pretty_json


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    pass


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


def saved_as(instance, saved) -> None:
    """The admin's object becomes the row the service saved (the response and
    the history entry name it)."""
    instance.pk = saved.pk
    instance._state.adding = False
