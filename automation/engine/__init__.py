"""Running rules: the outbox worker (``outbox``), one rule's execution
(``execution``), scheduled rules (``scheduled``), and the rules a batch
reads (``rules``)."""

from automation.engine.execution import Target, action_config, rule_execute
from automation.engine.outbox import (
    event_replay,
    event_run,
    outbox_helpers_needed,
    outbox_process,
    outbox_process_batch,
)
from automation.engine.rules import LoadedRule, RuleBook, active_actions, dependency_order
from automation.engine.scheduled import next_run_after, scheduled_rules_run

__all__ = [
    "LoadedRule",
    "RuleBook",
    "Target",
    "action_config",
    "active_actions",
    "dependency_order",
    "event_replay",
    "event_run",
    "next_run_after",
    "outbox_helpers_needed",
    "outbox_process",
    "outbox_process_batch",
    "rule_execute",
    "scheduled_rules_run",
]
