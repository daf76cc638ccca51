"""JSON in the console reads as indented JSON: in the edit boxes (a rule's
conditions, an action's config, an approval template's samples) and on
read-only pages (an event's changed fields, a scan job's settings)."""

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalTemplate
from automation.models import AutomationEvent
from scanning.choices import ScanJobStatus
from tests.approvals.factories import staff_with
from tests.automation.factories import alert_action, make_rule
from tests.scanning.factories import ScanJobFactory

pytestmark = pytest.mark.django_db

# An indented key as the page's HTML escapes it: a new line, two spaces, the key.
INDENTED = "\n  &quot;{}&quot;: "


def test_a_rules_conditions_and_action_config_are_edited_indented(admin_client, tenant_entity):
    # Given a rule with a condition and an alert action
    rule = make_rule(
        conditions=[{"field_name": "name", "operator": "equals", "value": "Acme"}],
        actions=[alert_action()],
    )

    # When the operator opens it to edit
    page = admin_client.get(reverse("admin:automation_automationrule_change", args=[rule.pk]))

    # Then both JSON boxes show their value indented, one key a line
    assert page.status_code == 200
    assert INDENTED.format("field_conditions") in page.text
    assert INDENTED.format("alert_type") in page.text


def test_an_invalid_json_box_shows_back_what_was_typed(admin_client):
    # Given an approval template form sent with broken JSON in a box
    response = admin_client.post(
        reverse("admin:approvals_approvaltemplate_add"),
        {
            "name": "t",
            "content": "<p>x</p>",
            "sample_variables": "{not json",
            "default_approvers": "[]",
        },
    )

    # Then the form comes back with the error and the text as typed
    assert response.status_code == 200
    assert "{not json</textarea>" in response.text


def test_an_approval_templates_samples_are_edited_indented(admin_client):
    # Given a template with sample values
    template = ApprovalTemplate.objects.create(
        name="t", content="<p>{{who}}</p>", sample_variables={"who": "Ann"}, default_approvers=[]
    )

    # When the operator opens it to edit
    page = admin_client.get(reverse("admin:approvals_approvaltemplate_change", args=[template.pk]))

    # Then the samples box is indented
    assert INDENTED.format("who") in page.text


def test_an_events_changed_fields_are_pretty_printed(admin_client, tenant_entity):
    # Given an event recording which fields changed
    event = AutomationEvent.objects.create(
        entity=tenant_entity, trigger="on_update", object_pk="1", changed_fields=["name", "slug"]
    )

    # When the operator opens it
    page = admin_client.get(reverse("admin:automation_automationevent_change", args=[event.pk]))

    # Then the list reads one name a line
    assert "[\n  &quot;name&quot;,\n  &quot;slug&quot;\n]" in page.text


def test_a_queued_scan_jobs_settings_are_pretty_printed(admin_client):
    # Given a queued job (its settings read-only)
    job = ScanJobFactory(status=ScanJobStatus.QUEUED, queued_at=timezone.now())

    # When the operator opens it
    page = admin_client.get(reverse("admin:scanning_scanjob_change", args=[job.pk]))

    # Then its settings read one key a line
    assert page.status_code == 200
    assert INDENTED.format("mode") in page.text


def test_a_reader_sees_a_rules_conditions_pretty_printed(client, tenant_entity):
    # Given a rule, and a staff user who may view rules but not change them
    rule = make_rule(conditions=[{"field_name": "name", "operator": "equals", "value": "Acme"}])
    client.force_login(staff_with("automation.view_automationrule"))

    # When the reader opens the rule
    page = client.get(reverse("admin:automation_automationrule_change", args=[rule.pk]))

    # Then the conditions read one key a line, with nothing to save
    assert page.status_code == 200
    assert INDENTED.format("field_conditions") in page.text
    assert 'name="_save"' not in page.text


def test_a_reader_sees_an_approval_templates_json_pretty_printed(client):
    # Given a template, and a staff user who may view templates but not change them
    template = ApprovalTemplate.objects.create(
        name="t",
        content="<p>{{who}}</p>",
        sample_variables={"who": "Ann"},
        default_approvers=[{"ep_id": "EP-1", "seq": 1, "role": 1}],
    )
    client.force_login(staff_with("approvals.view_approvaltemplate"))

    # When the reader opens it
    page = client.get(reverse("admin:approvals_approvaltemplate_change", args=[template.pk]))

    # Then the samples and the approvers read one key a line
    assert page.status_code == 200
    assert INDENTED.format("who") in page.text
    assert "\n    &quot;ep_id&quot;: " in page.text
