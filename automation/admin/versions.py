"""Rule versions, read-only: each one's definition and its diff against the
version before it."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from automation.admin.base import ReadOnlyAdmin
from automation.models import RuleVersion
from automation.services.versions import rule_version_diff
from operations.admin import pretty_json


@admin.register(RuleVersion)
class RuleVersionAdmin(ReadOnlyAdmin):
    list_display = ["rule", "version", "saved_by", "saved_at"]
    list_filter = ["rule"]
    search_fields = ["rule__name", "=rule__id"]
    list_select_related = ["rule", "saved_by"]
    fields = ["rule", "version", "saved_by", "saved_at", "diff", "definition_pretty"]
    readonly_fields = fields

    @admin.display(description="changes from the version before")
    def diff(self, version):
        text = rule_version_diff(version=version)
        if not text:
            return "The first version kept."
        return format_html('<pre class="rule-version-diff">{}</pre>', text)

    @admin.display(description="definition")
    def definition_pretty(self, version):
        return pretty_json(version.definition)


def version_link(rule_id: int, version: int, label: str | None = None):
    """A link to the kept version ``version`` of rule ``rule_id`` (its list,
    filtered, when the row is not there: a version from before versions were kept)."""
    found = RuleVersion.objects.filter(rule_id=rule_id, version=version).values_list(
        "pk", flat=True
    )
    text = label or f"v{version}"
    if found:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:automation_ruleversion_change", args=[found[0]]),
            text,
        )
    return text
