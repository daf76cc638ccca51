"""The approvals admin's forms. They validate input; every write goes through
``approvals.services``, as from the API and the commands."""

from __future__ import annotations

from django import forms
from django.forms.models import BaseInlineFormSet

from approvals.models import ApprovalTemplate
from approvals.registry import get_registered_handlers
from approvals.services import knox_profile_set
from approvals.templating import template_variables


class ApprovalRequestForm(forms.Form):
    action_type = forms.ChoiceField(choices=())
    template = forms.ModelChoiceField(queryset=ApprovalTemplate.objects.filter(is_active=True))
    title = forms.CharField(max_length=500)
    variables = forms.JSONField(
        initial=dict, required=False, help_text='JSON object, e.g. {"tenant_name": "Initech"}'
    )
    payload = forms.JSONField(
        initial=dict, required=False, help_text="JSON object the handler runs with once approved."
    )
    approvers = forms.CharField(
        required=False,
        help_text="Approvers' Knox EP IDs, comma-separated, in approval order. "
        "Leave empty to use the template's default approval line.",
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    deadline = forms.CharField(
        required=False,
        max_length=20,
        help_text="How long Knox has to decide, e.g. 2d or 4h. Leave empty for the template's "
        "decision deadline.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action_type"].choices = [
            (key, key) for key in sorted(get_registered_handlers())
        ]


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
