"""Rule versions: every save of a rule keeps its whole definition, so an
execution's ``rule_version`` names what ran and a reader can see what changed."""

from __future__ import annotations

import difflib
import json
from typing import Any

from automation.models import AutomationRule, RuleVersion
from automation.webhooks import mask_config


def rule_definition(rule: AutomationRule) -> dict[str, Any]:
    """The rule as saved now: its fields, its actions in order, its parents
    (webhook URLs masked, as readers see them)."""
    actions = rule.actions.order_by("execution_order", "id").values(
        "name",
        "description",
        "action_type",
        "action_config",
        "execution_order",
        "is_active",
        "template_id",
    )
    return {
        "name": rule.name,
        "description": rule.description,
        "entity": rule.entity.name,
        "trigger_type": rule.trigger_type.name,
        "trigger_conditions": rule.trigger_conditions,
        "cron_expression": rule.cron_expression,
        "is_active": rule.is_active,
        "actions": [
            {**action, "action_config": mask_config(action["action_config"])} for action in actions
        ],
        "depends_on": sorted(rule.parent_links.values_list("parent_rule_id", flat=True)),
    }


def rule_version_record(*, rule: AutomationRule, actor) -> RuleVersion:
    """Keep the definition ``rule`` has at its current version; called by the
    services that save a rule, inside their transaction."""
    return RuleVersion.objects.create(
        rule=rule, version=rule.version, definition=rule_definition(rule), saved_by=actor
    )


def rule_version_diff(*, version: RuleVersion) -> str:
    """A unified diff of ``version`` against the one before it (empty for the
    first version kept)."""
    before = (
        RuleVersion.objects.filter(rule_id=version.rule_id, version__lt=version.version)
        .order_by("-version")
        .first()
    )
    if before is None:
        return ""
    return "".join(
        difflib.unified_diff(
            _lines(before.definition),
            _lines(version.definition),
            fromfile=f"version {before.version}",
            tofile=f"version {version.version}",
        )
    )


def _lines(definition: dict[str, Any]) -> list[str]:
    text = json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return [line + "\n" for line in text.splitlines()]
