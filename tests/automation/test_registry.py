"""Each app registers its own models with automation, and the fields rules may
write on them, from its own AppConfig.ready() (automation.registry)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models.signals import post_save

from approvals.models import PendingAction
from automation.actions.fields import resolve_target
from automation.entities import registered_models
from automation.registry import EntityRegistry, entity_registry
from operations.models import Tenant
from scanning.models import ScanJob


def test_the_owning_apps_registered_their_models_and_writable_fields():
    # given: operations, approvals and scanning ran their ready()

    # then: each of their models is registered with the fields its app allows
    assert {
        label: entity_registry.writable_fields(label)
        for label in (
            "operations.Tenant",
            "operations.Workspace",
            "approvals.PendingAction",
            "scanning.ScanJob",
        )
    } == {
        "operations.Tenant": ("name",),
        "operations.Workspace": ("name",),
        "approvals.PendingAction": (),
        "scanning.ScanJob": (),
    }
    # and automation watches them (nothing else listens to their saves)
    assert post_save.has_listeners(PendingAction) and post_save.has_listeners(ScanJob)


def test_a_model_registered_after_automation_is_ready_is_watched_at_once():
    # given: a registry automation already listens to
    registry = EntityRegistry()
    watched = []
    registry.subscribe(watched.append)

    # when: an app registers a model later (its ready() runs after automation's)
    registry.register(Group, writable_fields=("name",))

    # then
    assert watched == [Group]
    assert registry.writable_fields("auth.Group") == ("name",)
    assert registry.writable_fields("auth.User") is None  # not registered: no allowlist


def test_a_listener_subscribing_late_hears_of_every_model_registered_before():
    registry = EntityRegistry()
    registry.register(Group)
    watched = []

    registry.subscribe(watched.append)

    assert watched == [Group]


@pytest.mark.parametrize(
    ("field", "named"),
    [("nonsense", "has no field 'nonsense'"), ("id", "not a field rules can write")],
)
def test_registering_a_field_rules_cannot_write_stops_the_start(field, named):
    with pytest.raises(ImproperlyConfigured, match=named):
        EntityRegistry().register(Group, writable_fields=(field,))


@pytest.mark.django_db
def test_extra_models_from_the_setting_join_the_registered_ones(settings):
    settings.AUTOMATION_ENTITIES = ["auth.Group", "operations.Tenant", "nowhere.Thing"]

    found, missing = registered_models()

    assert {"operations.Tenant", "scanning.ScanJob", "auth.Group"} <= set(found)
    assert missing == ["nowhere.Thing: the app 'nowhere' is not installed"]


def test_rules_write_only_what_the_owning_app_allows():
    assert resolve_target(Tenant, "workspace.name")[1].name == "name"
    with pytest.raises(
        ValidationError, match=r"Workspace.slug cannot be set by a rule \(writable: name\)"
    ):
        resolve_target(Tenant, "workspace.slug")
    with pytest.raises(
        ValidationError, match=r"ScanJob.title cannot be set by a rule \(writable: none\)"
    ):
        resolve_target(ScanJob, "title")
