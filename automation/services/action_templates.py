"""Action templates: a named default config rules' actions start from."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from automation.models import ActionTemplate
from automation.validation import template_full_clean
from config.transitions import lock

TEMPLATE_FIELDS = ("name", "description", "action_type", "default_config", "is_active")


@transaction.atomic
def template_save(
    *, actor, template: ActionTemplate | None = None, **fields: Any
) -> ActionTemplate:
    """Create an action template (``template`` None) or change one:
    ``fields`` are the ones given. Deactivating it records who did."""
    unknown = set(fields) - set(TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(f"template_save got unknown fields {sorted(unknown)}")
    if template is None:
        template = ActionTemplate(created_by=actor)
    else:
        template = lock(ActionTemplate, pk=template.pk)
    for key, value in fields.items():
        setattr(template, key, value)
    if fields.get("is_active") is True:
        template.deactivated_by = None
    elif fields.get("is_active") is False and template.deactivated_by is None:
        template.deactivated_by = actor
    template_full_clean(template)
    template.save()
    return template
