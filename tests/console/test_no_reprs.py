"""No Python repr anywhere in the console (issue 12, item 5): the list and
the detail page of every model registered in the admin, each with a planted
row full of what reprs come from (JSON objects and lists, empty values,
dates, related rows), read as words: no ``{'``, ``[<``, ``<QuerySet``,
``datetime.datetime(``, ``Decimal(``, ``object at 0x`` or ``None`` shown
as a value. Served by Django's test client: runs on both databases."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib import admin
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task
from rest_framework.authtoken.models import Token

from approvals.choices import ActionStatus, FailureStage
from approvals.models import ApprovalTemplate
from automation.engine import outbox_process
from automation.entities import entities_sync
from automation.models import ActionTemplate, NotificationProfile
from operations.choices import RunOutcome, RunStatus
from scanning.models import ScanJobBatch
from scanning.services import scan_agent_create, scan_agent_heartbeat
from tests.automation.factories import (
    INBOUND_SECRET,
    INBOUND_SECRET_SETTING,
    GroupFactory,
    alert_action,
    inbound_source,
    make_rule,
)
from tests.observability.factories import PendingActionFactory, TaskFactory
from tests.operations.factories import OperationRunFactory, TenantFactory, UserFactory
from tests.scanning.factories import DocumentFactory, ScanJobFactory

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)

# Lists that hide some rows by default, opened to show them all.
LIST_QUERY = {"operations.OperationRun": "?kind=all"}

# What a repr looks like once the page's markup is gone.
REPR_SIGNS = (
    "{'",
    "['",
    "[<",
    "<QuerySet",
    "datetime.datetime(",
    "datetime.date(",
    "datetime.timedelta(",
    "Decimal(",
    "UUID('",
    "object at 0x",
    "<django.",
)
# ``None`` as a cell's or a read-only field's whole value.
NONE_VALUE = re.compile(r">\s*None\s*<")
CODE = re.compile(r"<(script|style)\b.*?</\1>", re.S)
TAGS = re.compile(r"<[^>]+>")


def reprs_in(page: str) -> list[str]:
    markup = CODE.sub("", page)
    found = [m.group(0).strip() for m in NONE_VALUE.finditer(markup)]
    text = html.unescape(TAGS.sub(" ", markup))
    for sign in REPR_SIGNS:
        for match in re.finditer(re.escape(sign), text):
            found.append(text[max(0, match.start() - 60) : match.end() + 60].strip())
    return found


@pytest.fixture
def console(client, settings):
    settings.AUTOMATION_INBOUND_SECRETS = [INBOUND_SECRET_SETTING]
    setattr(settings, INBOUND_SECRET_SETTING, INBOUND_SECRET)
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    _plant(root)
    return client


def _plant(root) -> None:
    """A row for every registered model, the way the app makes them where it can."""
    now = timezone.now()
    entities_sync()
    GroupFactory(name="on-call")
    Token.objects.create(user=root)
    OperationRunFactory(
        type="approvals.poll_knox",
        status=RunStatus.COMPLETED,
        outcome=RunOutcome.FAILED,
        started_at=now,
        completed_at=now,
        summary_counts={"checked": 3, "failed": 1},
        failure_summary=[{"code": "knox.timeout", "message": "Knox did not answer in 10 s"}],
        context={"ap_inf_ids": ["a" * 32], "tenant_id": None},
        tenant=TenantFactory(name="Initech"),
    )
    ApprovalTemplate.objects.create(
        name="New tenant",
        content="<p>Create {{name}}</p>",
        sample_variables={"name": "Initech"},
        default_approvers=[{"ep_id": "EP-1", "seq": 1, "role": 1}],
    )
    PendingActionFactory(
        status=ActionStatus.FAILED,
        failure_stage=FailureStage.SUBMIT,
        action_payload={"workspace": "acme", "name": "Initech", "tags": ["a", "b"]},
        created_by=root,
    )
    ActionTemplate.objects.create(
        name="Page on-call",
        action_type="create_alert",
        default_config={"severity": "high", "recipients": {"roles": ["on-call"]}},
        created_by=root,
    )
    NotificationProfile.objects.create(user=root, phone_number="+15550100")
    make_rule(
        actor=root,
        name="Tell on-call",
        conditions=[{"field_name": "name", "operator": "in", "value": ["Acme", "Globex"]}],
        actions=[
            alert_action(recipients={"users": [root.pk], "roles": ["on-call"]}, context={"k": [1]}),
            {
                "name": "notify",
                "action_type": "send_notification",
                "execution_order": 2,
                "action_config": {
                    "channels": ["in_app"],
                    "recipients": {"users": ["root"]},
                    "message": "{{name}}",
                },
            },
        ],
    )
    tenant = TenantFactory(name="Old")
    tenant.name = "Acme"
    tenant.save()
    outbox_process()  # an event, an execution, an alert and a delivery
    job = ScanJobFactory(status="failed")
    ScanJobBatch.objects.create(
        job=job,
        batch_seq=1,
        file=ContentFile(b"%PDF-1.4", name="batch.pdf"),
        page_count=2,
        size_bytes=8,
        sha256="0" * 64,
    )
    agent = scan_agent_create(name="scanner-host").agent
    scan_agent_heartbeat(agent=agent, version="1.0")
    DocumentFactory()
    TaskFactory(success=True, result={"done": [1, 2]})
    TaskFactory(success=False, result="Traceback (most recent call last): boom")
    Schedule.objects.create(name="bureau.test", func="math.floor", args="1")
    inbound_source(slug="shop", description="Orders from the web shop")
    async_task("math.floor", 1.5, task_name="bureau.test")  # queued in the ORM broker


def test_every_registered_model_has_a_planted_row(console):
    empty = [m._meta.label for m in REGISTERED if not m._default_manager.exists()]

    assert empty == []


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_a_models_list_and_detail_page_show_no_python_repr(console, model):
    # given: the planted rows (console fixture)
    opts = model._meta
    row = model._default_manager.order_by("pk").first()
    assert row is not None, f"no {opts.label} row planted"

    # when
    listing = console.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    detail = console.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))

    # then
    assert (listing.status_code, detail.status_code) == (200, 200)
    assert reprs_in(listing.content.decode()) == []
    assert reprs_in(detail.content.decode()) == []
