"""Every operator, as the issue defines it; changed_from / changed_to also on
a real update of a real row, through the signal, outbox and worker."""

import pytest

from automation.conditions import OPERATORS, evaluate
from automation.models import AutomationEvent, AutomationExecution
from tests.automation.factories import make_rule
from tests.operations.factories import TenantFactory


def _match(operator, value=None, *, new, old=None, field="f"):
    condition = {"field_name": field, "operator": operator}
    if value is not None or operator not in ("is_null", "is_not_null"):
        condition["value"] = value
    matched, results = evaluate({"field_conditions": [condition]}, new=new, old=old)
    assert results[0].matched is matched
    return matched


@pytest.mark.parametrize(
    ("operator", "value", "new", "old", "expected"),
    [
        ("equals", "shipped", {"f": "shipped"}, None, True),
        ("equals", "shipped", {"f": "open"}, None, False),
        ("equals", 5, {"f": "5"}, None, True),  # numbers as numbers when both are
        ("equals", "5.0", {"f": 5}, None, True),
        ("equals", None, {"f": None}, None, True),
        ("equals", True, {"f": True}, None, True),
        ("not_equals", "shipped", {"f": "open"}, None, True),
        ("not_equals", "shipped", {"f": "shipped"}, None, False),
        ("changed_from", "open", {"f": "shipped"}, {"f": "open"}, True),
        ("changed_from", "open", {"f": "shipped"}, {"f": "draft"}, False),
        ("changed_from", "open", {"f": "shipped"}, None, False),  # not an update
        ("changed_to", "shipped", {"f": "shipped"}, {"f": "open"}, True),
        ("changed_to", "shipped", {"f": "shipped"}, {"f": "shipped"}, False),  # was already
        ("changed_to", "shipped", {"f": "open"}, {"f": "draft"}, False),
        ("changed_to", "shipped", {"f": "shipped"}, None, False),  # a create has no old
        ("greater_than", 10, {"f": 11}, None, True),
        ("greater_than", 10, {"f": "9"}, None, False),  # 9 < 10 numerically
        ("greater_than", 10, {"f": 10}, None, False),
        ("greater_than", "b", {"f": "c"}, None, True),  # text otherwise
        ("greater_than", "10", {"f": "9a"}, None, True),  # "9a" > "10" as text
        ("greater_than", 1, {"f": None}, None, False),
        ("less_than", 10, {"f": 2}, None, True),  # "2" < "10" only as numbers
        ("less_than", "10", {"f": "2.5"}, None, True),
        ("less_than", 10, {"f": 10}, None, False),
        ("less_than", "b", {"f": "a"}, None, True),
        ("contains", "ack", {"f": "Acme, ackbar"}, None, True),
        ("contains", "zzz", {"f": "Acme"}, None, False),
        ("contains", 3, {"f": [1, 2, 3]}, None, True),
        ("contains", "x", {"f": None}, None, False),
        ("in", ["open", "shipped"], {"f": "open"}, None, True),
        ("in", ["open", "shipped"], {"f": "closed"}, None, False),
        ("in", [1, 2], {"f": "2"}, None, True),
        ("is_null", None, {"f": None}, None, True),
        ("is_null", None, {"f": ""}, None, False),
        ("is_not_null", None, {"f": 0}, None, True),
        ("is_not_null", None, {"f": None}, None, False),
    ],
)
def test_each_operator(operator, value, new, old, expected):
    assert _match(operator, value, new=new, old=old) is expected


def test_every_operator_of_the_issue_is_covered():
    assert set(OPERATORS) == {
        "equals",
        "not_equals",
        "changed_from",
        "changed_to",
        "greater_than",
        "less_than",
        "contains",
        "in",
        "is_null",
        "is_not_null",
        # issue 13: time-based conditions (tests/automation/test_time_conditions.py)
        "older_than",
        "newer_than",
        "within_next",
    }


def test_conditions_are_anded_and_empty_conditions_match_everything():
    both = {
        "field_conditions": [
            {"field_name": "a", "operator": "equals", "value": 1},
            {"field_name": "b", "operator": "equals", "value": 2},
        ]
    }
    assert evaluate(both, new={"a": 1, "b": 2}, old=None)[0] is True
    assert evaluate(both, new={"a": 1, "b": 3}, old=None)[0] is False
    assert evaluate({}, new={"a": 1}, old=None)[0] is True
    assert evaluate(None, new=None, old=None)[0] is True


@pytest.fixture
def rename_rules(tenant_entity):
    """Three on_update rules on Tenant.name: changed_from Old, changed_to New,
    and changed_to Old (which the rename below must not match)."""
    return {
        "from_old": make_rule(
            name="from old",
            conditions=[{"field_name": "name", "operator": "changed_from", "value": "Old"}],
        ),
        "to_new": make_rule(
            name="to new",
            conditions=[{"field_name": "name", "operator": "changed_to", "value": "New"}],
        ),
        "to_old": make_rule(
            name="to old",
            conditions=[{"field_name": "name", "operator": "changed_to", "value": "Old"}],
        ),
    }


@pytest.mark.django_db
def test_changed_from_and_changed_to_on_a_real_update(
    rename_rules, django_capture_on_commit_callbacks
):
    # given: a tenant called Old
    tenant = TenantFactory(name="Old")

    # when: it is renamed, and the transaction commits (the worker runs then)
    with django_capture_on_commit_callbacks(execute=True):
        tenant.name = "New"
        tenant.save()

    # then: the event carries the old value and the changed field
    event = AutomationEvent.objects.get(trigger="on_update")
    assert event.old_values["name"] == "Old"
    assert event.new_values["name"] == "New"
    assert event.changed_fields == ["name"]
    assert event.status == "processed"
    ran = set(AutomationExecution.objects.values_list("rule__name", flat=True))
    assert ran == {"from old", "to new"}


@pytest.mark.django_db
def test_a_save_that_changes_nothing_does_not_match_changed_to(
    rename_rules, django_capture_on_commit_callbacks
):
    tenant = TenantFactory(name="New")

    with django_capture_on_commit_callbacks(execute=True):
        tenant.save()

    assert AutomationEvent.objects.get().changed_fields == []
    assert not AutomationExecution.objects.exists()
