"""Rule dependencies: parents run before their children, and a set of
parents that would close a loop is refused when it is saved, under a lock on
the dependency graph (two edits that close a loop together cannot both pass)."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from automation.models import AutomationRule, RuleDependency
from automation.selectors import rule_dependency_cycle
from config.transitions import lock_many


def _describe_cycle(cycle: list[int]) -> str:
    names = dict(AutomationRule.objects.filter(pk__in=cycle).values_list("pk", "name"))
    return " → ".join(f"{names.get(pk, '(this rule)')} (#{pk})" for pk in cycle)


def _refuse_cycle(*, rule: AutomationRule, parent_ids: Iterable[int]) -> None:
    cycle = rule_dependency_cycle(rule=rule, parent_ids=parent_ids)
    if cycle is not None:
        raise ValidationError(
            {"depends_on": [f"Dependency cycle: {_describe_cycle(cycle)}."]}, code="cycle"
        )


def dependency_graph_lock(*, rule_ids: Iterable[int]) -> None:
    """Lock, in id order, every rule in the dependency graph plus ``rule_ids``.
    Two edits that would close a loop together share at least one of these
    rows, so the second waits for the first and sees its edge."""
    linked = RuleDependency.objects.values_list("child_rule_id", flat=True).union(
        RuleDependency.objects.values_list("parent_rule_id", flat=True)
    )
    lock_many(AutomationRule.objects.only("pk"), set(rule_ids) | set(linked))


def rule_parents_set(*, rule: AutomationRule, parents: Iterable[AutomationRule]) -> None:
    """Make ``parents`` the rule's parent rules, refusing a set that closes a loop."""
    parent_ids = sorted({p.pk for p in parents})
    if parent_ids or RuleDependency.objects.filter(child_rule=rule).exists():
        dependency_graph_lock(rule_ids=[rule.pk, *parent_ids])
    _refuse_cycle(rule=rule, parent_ids=parent_ids)
    RuleDependency.objects.filter(child_rule=rule).exclude(parent_rule_id__in=parent_ids).delete()
    existing = set(
        RuleDependency.objects.filter(child_rule=rule).values_list("parent_rule_id", flat=True)
    )
    RuleDependency.objects.bulk_create(
        [RuleDependency(parent_rule_id=p, child_rule=rule) for p in parent_ids if p not in existing]
    )


def rule_parents_check(*, rule: AutomationRule, parent_ids: Iterable[int]) -> None:
    """The console's check: lock the dependency graph (in id order, the rule
    included) and look for a loop under that lock. Called inside the
    caller's transaction, which keeps the lock until its save commits, so a
    concurrent edit cannot close a loop in between."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("rule_parents_check needs the caller's transaction")
    parent_ids = sorted(set(parent_ids))
    dependency_graph_lock(rule_ids=[rule.pk, *parent_ids])
    _refuse_cycle(rule=rule, parent_ids=parent_ids)
