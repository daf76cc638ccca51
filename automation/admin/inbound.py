"""Inbound webhook sources in the console, saved by inbound_source_save; their
counters are read-only, and their secret is chosen by the setting's name
(its value is never shown)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from automation import conf
from automation.admin.base import ServiceRefused, ServiceSaveMixin, saved_as
from automation.choices import InboundRefusal
from automation.models import InboundSource
from automation.services.inbound import SOURCE_FIELDS, inbound_source_save

COUNTERS = ["accepted", *(InboundSource.counter_field(r) for r in InboundRefusal)]


class InboundSourceForm(forms.ModelForm):
    secret_setting = forms.ChoiceField(
        choices=(),
        help_text="The setting (an environment variable) holding this source's HMAC secret: "
        "the AUTOMATION_INBOUND_SECRET_<NAME> names listed in AUTOMATION_INBOUND_SECRETS.",
    )

    class Meta:
        model = InboundSource
        fields = list(SOURCE_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = list(conf.inbound_secret_sources())
        current = self.instance.secret_setting
        if current and current not in names:
            # Shown as it is (and refused when saved) rather than silently replaced.
            names.append(current)
        self.fields["secret_setting"].choices = [("", "---------")] + [(n, n) for n in names]

    def clean_secret_setting(self):
        name = self.cleaned_data["secret_setting"]
        if name not in conf.inbound_secret_sources():
            raise ValidationError(
                f"{name} is no longer listed in AUTOMATION_INBOUND_SECRETS; choose another."
            )
        return name


@admin.register(InboundSource)
class InboundSourceAdmin(ServiceSaveMixin, admin.ModelAdmin):
    form = InboundSourceForm
    list_display = [
        "slug",
        "name",
        "is_active",
        "secret_configured",
        "accepted",
        "refused",
        "last_accepted_at",
        "last_refused_at",
        "last_refusal",
    ]
    list_filter = ["is_active"]
    search_fields = ["slug", "name"]
    readonly_fields = [
        "endpoint",
        "entity",
        "secret_configured",
        *COUNTERS,
        "last_accepted_at",
        "last_refused_at",
        "last_refusal",
        "created_at",
        "updated_at",
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.insert(0, "slug")  # fixed once created (its URL and its entity)
        return fields

    def get_fields(self, request, obj=None):
        if obj is None:
            return list(SOURCE_FIELDS)
        return list(dict.fromkeys([*SOURCE_FIELDS, *self.get_readonly_fields(request, obj)]))

    def has_delete_permission(self, request, obj=None):
        # Its entity keeps its events and rules: deactivate a source instead.
        return False

    @admin.display(description="endpoint")
    def endpoint(self, source):
        return reverse("automation-inbound", kwargs={"source": source.slug})

    @admin.display(description="secret set", boolean=True)
    def secret_configured(self, source) -> bool:
        try:
            return bool(conf.inbound_secret(source.secret_setting))
        except ValueError:
            return False

    @admin.display(description="refused")
    def refused(self, source):
        counts = {r: n for r, n in source.refusals().items() if n}
        if not counts:
            return 0
        return format_html(
            "{} ({})",
            sum(counts.values()),
            ", ".join(f"{reason} {n}" for reason, n in counts.items()),
        )

    def save_model(self, request, obj, form, change):
        fields = {
            name: form.cleaned_data[name] for name in SOURCE_FIELDS if name in form.cleaned_data
        }
        if change:
            fields.pop("slug", None)
        try:
            source = inbound_source_save(
                actor=request.user, source=obj if change else None, **fields
            )
        except ValidationError as error:
            raise ServiceRefused(error) from None
        saved_as(obj, source)
