"""The models rules may watch (registered by automation_sync_entities), and
the seed's trigger and entity types: lookup tables, shown and never edited in
the console (the sync command and the migrations own them)."""

from __future__ import annotations

from django.contrib import admin

from automation.admin.base import ReadOnlyAdmin
from automation.models import (
    Entity,
    EntityType,
    TriggerType,
)


@admin.register(Entity)
class EntityAdmin(ReadOnlyAdmin):
    list_display = ["name", "model_label", "entity_type", "is_active", "created_at"]
    fields = ["name", "model_label", "entity_type", "schema_name", "is_active", "created_at"]
    readonly_fields = fields
    search_fields = ["name", "model_label"]


@admin.register(TriggerType, EntityType)
class LookupTypeAdmin(ReadOnlyAdmin):
    list_display = ["name", "description", "is_active"]
    fields = ["name", "description", "is_active"]
    readonly_fields = fields
