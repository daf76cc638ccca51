"""Automation's tables, after seed 002 (workflow.*).

Differences from the seed, and why:
- ids are Django's BigAutoField like the rest of Bureau; ``source_entity_id``
  and ``recipient`` are text so any primary key fits.
- ``Entity`` also stores the Django model label it resolves to.
- ``RuleAction.action_type`` is on the action (a template is optional).
- ``AutomationEvent`` is the outbox; ``IdempotencyRecord`` generalises the
  seed's allocation_results.
- ``AlertAcknowledgement.kind`` says whether the recipient acknowledged or
  dismissed: acknowledgement is per recipient.
- ``InboundSource`` (not in the seed): an external system posting signed
  events; its ``Entity`` has no model (``inbound:<slug>``).

This module is a leaf: it imports no validators, registries or services.
What a rule or a template must satisfy beyond its fields' own checks
(``automation.validation``) is checked by the services and the admin forms.
"""

from automation.models.alerts import Alert, AlertAcknowledgement, AlertRecipient, AlertStatusChange
from automation.models.inbound import InboundSource
from automation.models.notifications import NotificationDelivery, NotificationProfile
from automation.models.rules import (
    ActionTemplate,
    AutomationRule,
    Entity,
    EntityType,
    RuleAction,
    RuleDependency,
    RuleVersion,
    TriggerType,
)
from automation.models.runs import AutomationEvent, AutomationExecution, IdempotencyRecord

__all__ = [
    "ActionTemplate",
    "Alert",
    "AlertAcknowledgement",
    "AlertRecipient",
    "AlertStatusChange",
    "AutomationEvent",
    "AutomationExecution",
    "AutomationRule",
    "Entity",
    "EntityType",
    "IdempotencyRecord",
    "InboundSource",
    "NotificationDelivery",
    "NotificationProfile",
    "RuleAction",
    "RuleDependency",
    "RuleVersion",
    "TriggerType",
]
