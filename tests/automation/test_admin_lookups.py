"""Lookup tables (trigger types, entity types, entities) are shown in the
console and never added, changed or deleted there: the migrations and
automation_sync_entities own them."""

import pytest
from django.urls import reverse

from automation.models import Entity, EntityType, TriggerType

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [TriggerType, EntityType, Entity])
def test_a_lookup_table_is_view_only_in_the_console(admin_client, entities, model):
    # Given a row of the lookup table
    row = model.objects.first()
    name = f"admin:automation_{model._meta.model_name}"
    before = {field.name: getattr(row, field.attname) for field in model._meta.concrete_fields}

    # When the operator opens it and tries to add, change and delete
    listed = admin_client.get(reverse(f"{name}_changelist"))
    page = admin_client.get(reverse(f"{name}_change", args=[row.pk]))
    added = admin_client.get(reverse(f"{name}_add"))
    changed = admin_client.post(
        reverse(f"{name}_change", args=[row.pk]), {"is_active": "", "description": "edited"}
    )
    deleted = admin_client.post(reverse(f"{name}_delete", args=[row.pk]), {"post": "yes"})

    # Then it is shown, with no save button, and every write is refused
    assert (listed.status_code, page.status_code) == (200, 200)
    assert 'name="_save"' not in page.text
    assert (added.status_code, changed.status_code, deleted.status_code) == (403, 403, 403)
    row.refresh_from_db()
    assert {field.name: getattr(row, field.attname) for field in model._meta.concrete_fields} == (
        before
    )
