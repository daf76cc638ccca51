from pathlib import Path

import pytest
from django.core.management import (
    CommandError,
    call_command,
    find_commands,
    load_command_class,
)

import automation
from automation.models import Entity, NotificationDelivery
from config.commands import BureauCommand

pytestmark = pytest.mark.django_db


def test_sync_entities_registers_bureaus_models_and_listed_ones(settings, capsys):
    settings.AUTOMATION_ENTITIES = [
        "auth.Group",
        "nowhere.Thing",
        "operations.Nothing",
        "bad-label",
    ]
    Entity.objects.all().delete()

    call_command("automation_sync_entities")

    out, err = capsys.readouterr()
    labels = set(Entity.objects.values_list("model_label", flat=True))
    assert {"operations.Tenant", "operations.Workspace", "auth.Group"} <= labels
    tenant = Entity.objects.get(model_label="operations.Tenant")
    assert (tenant.name, tenant.entity_type.name) == ("operations_tenant", "table")
    assert "skipped nowhere.Thing: the app 'nowhere' is not installed" in err
    assert "skipped operations.Nothing: the app 'operations' has no model 'Nothing' (yet)" in err
    assert "'bad-label' is not of the form app_label.ModelName" in err
    assert "3 skipped" in out

    call_command("automation_sync_entities")
    assert "0 created" in capsys.readouterr().out


def test_retry_deliveries_without_ids_sends_what_is_due(capsys):
    NotificationDelivery.objects.create(recipient="1", channel="in_app", payload={"message": "m"})

    call_command("automation_retry_deliveries")

    assert "delivered 1" in capsys.readouterr().out
    assert NotificationDelivery.objects.get().status == "delivered"


def test_retry_of_a_delivered_or_unknown_delivery_is_a_clear_error(capsys):
    delivered = NotificationDelivery.objects.create(
        recipient="1", channel="in_app", status="delivered"
    )

    with pytest.raises(CommandError, match="2 of 2 deliveries could not be retried"):
        call_command("automation_retry_deliveries", "--id", str(delivered.pk), "--id", "999999")

    err = capsys.readouterr().err
    assert f"Delivery {delivered.pk} is delivered; it cannot become retrying." in err
    assert "Delivery 999999 does not exist." in err


@pytest.mark.parametrize(
    "name", find_commands(str(Path(automation.__file__).parent / "management"))
)
def test_every_automation_command_turns_domain_errors_into_one_line(name):
    # BureauCommand: a domain error is one CommandError line, never a traceback
    command = load_command_class("automation", name)

    assert isinstance(command, BureauCommand)
