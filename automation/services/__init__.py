"""Every write automation makes, split by concept: rules with their actions
and dependencies, action templates, alerts, notification deliveries,
inbound webhook sources and their posts, and the dry run (which writes
nothing, but is asked as a service is: with the caller's permission checked)."""

from automation.services.action_templates import TEMPLATE_FIELDS, template_save
from automation.services.alerts import (
    alert_acknowledge,
    alert_dismiss,
    alert_set_status_by_operator,
    alerts_acknowledge_selected,
    alerts_expire,
)
from automation.services.backtest import Window, rule_backtest
from automation.services.deliveries import (
    backoff_delay,
    deliveries_release_abandoned,
    deliveries_send,
    delivery_retry,
    delivery_send,
)
from automation.services.dependencies import rule_parents_check
from automation.services.dry_run import rule_dry_run
from automation.services.inbound import inbound_event_receive, inbound_source_save
from automation.services.rules import RULE_FIELDS, rule_deactivate, rule_delete, rule_save

__all__ = [
    "RULE_FIELDS",
    "TEMPLATE_FIELDS",
    "Window",
    "alert_acknowledge",
    "alert_dismiss",
    "alert_set_status_by_operator",
    "alerts_acknowledge_selected",
    "alerts_expire",
    "backoff_delay",
    "deliveries_release_abandoned",
    "deliveries_send",
    "delivery_retry",
    "delivery_send",
    "inbound_event_receive",
    "inbound_source_save",
    "rule_backtest",
    "rule_deactivate",
    "rule_delete",
    "rule_dry_run",
    "rule_parents_check",
    "rule_save",
    "template_save",
]
