"""Raw rows for the read side (metrics, readiness): tests of behaviour move
these models through their services instead."""

from __future__ import annotations

import factory
from django.utils import timezone
from django_q.models import OrmQ, Task

from approvals.models import ApprovalLog, PendingAction
from automation.models import AutomationEvent, NotificationDelivery
from tests.automation.factories import AlertFactory  # noqa: F401 - re-exported
from tests.operations.factories import OperationRunFactory, WorkspaceFactory  # noqa: F401
from tests.scanning.factories import ScanJobFactory  # noqa: F401


class ApprovalLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApprovalLog

    ap_inf_id = factory.Sequence(lambda n: f"{n:032x}")
    subject = factory.Sequence(lambda n: f"Approval {n}")
    contents = "<p>Please approve.</p>"
    contents_sha256 = "0" * 64


class PendingActionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PendingAction

    approval_log = factory.SubFactory(ApprovalLogFactory)
    ap_inf_id = factory.SelfAttribute("approval_log.ap_inf_id")
    action_type = "operations.create_tenant"
    action_payload = factory.LazyFunction(dict)


class AutomationEventFactory(factory.django.DjangoModelFactory):
    """Needs ``entity`` (an ``automation.Entity`` row)."""

    class Meta:
        model = AutomationEvent

    trigger = "on_update"
    object_pk = factory.Sequence(str)


class NotificationDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationDelivery

    recipient = factory.Sequence(str)
    channel = "email"


class TaskFactory(factory.django.DjangoModelFactory):
    """A django-q2 task result, as a cluster's monitor saves it."""

    class Meta:
        model = Task

    id = factory.Sequence(lambda n: f"{n:032x}")
    name = factory.Sequence(lambda n: f"task-{n}")
    func = "math.floor"
    started = factory.LazyFunction(timezone.now)
    stopped = factory.LazyFunction(timezone.now)
    success = True


class OrmQFactory(factory.django.DjangoModelFactory):
    """A queued django-q2 task in the ORM broker (``lock`` in the past: waiting)."""

    class Meta:
        model = OrmQ

    key = "bureau"
    payload = "not-a-real-package"
    lock = factory.LazyFunction(timezone.now)
