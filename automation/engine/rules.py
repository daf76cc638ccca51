"""The rules a batch of events may fire, read once per batch, and the order
rules that matched one event run in (parents before children)."""

from __future__ import annotations

from dataclasses import dataclass, field

from automation.models import AutomationRule, RuleDependency


@dataclass
class LoadedRule:
    rule: AutomationRule
    actions: list


@dataclass
class RuleBook:
    """Active rules per (entity, trigger) with their actions, read once per batch."""

    _rules: dict[tuple[int, str], list[LoadedRule]] = field(default_factory=dict)
    _parents: dict[int, set[int]] = field(default_factory=dict)
    # Handed to the actions (ActionContext.cache) for lookups they may reuse.
    cache: dict = field(default_factory=dict)

    def rules_for(self, entity_id: int, trigger: str) -> list[LoadedRule]:
        key = (entity_id, trigger)
        if key not in self._rules:
            rules = list(
                AutomationRule.objects.filter(
                    entity_id=entity_id, trigger_type__name=trigger, is_active=True
                )
                .select_related("entity", "trigger_type")
                .order_by("id")
            )
            self._rules[key] = [LoadedRule(rule, active_actions(rule)) for rule in rules]
            ids = [r.pk for r in rules]
            for link in RuleDependency.objects.filter(child_rule_id__in=ids).values_list(
                "parent_rule_id", "child_rule_id"
            ):
                self._parents.setdefault(link[1], set()).add(link[0])
        return self._rules[key]

    def parents_of(self, rule_id: int) -> set[int]:
        return self._parents.get(rule_id, set())


def active_actions(rule: AutomationRule) -> list:
    return list(
        rule.actions.filter(is_active=True)
        .select_related("template")
        .order_by("execution_order", "id")
    )


def dependency_order(rule_ids: list[int], parents_of) -> list[int]:
    """Parents before children among ``rule_ids`` (stable by id otherwise).
    Cycles are refused when saved; should one exist anyway, its rules run in
    id order rather than not at all."""
    pending = sorted(rule_ids)
    members = set(pending)
    done: list[int] = []
    placed: set[int] = set()
    while pending:
        ready = [r for r in pending if not ((parents_of(r) & members) - placed)]
        if not ready:
            ready = pending[:1]
        for rule_id in ready:
            done.append(rule_id)
            placed.add(rule_id)
        pending = [r for r in pending if r not in placed]
    return done
