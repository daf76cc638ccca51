"""The models rules may watch (registered by automation_sync_entities), and
the seed's trigger and entity types."""

from __future__ import annotations

from django.contrib import admin

from automation.models import (
    Entity,
    EntityType,
    TriggerType,
)


@admin.register(Entity)
class EntityAdmin(admin.ModelAdmin):
    list_display = ["name", "model_label", "entity_type", "is_active", "created_at"]
    readonly_fields = ["name", "model_label", "entity_type", "schema_name", "created_at"]
    fields = ["name", "model_label", "entity_type", "schema_name", "is_active", "created_at"]

    def has_add_permission(self, request):
        return False  # manage.py automation_sync_entities registers them

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(TriggerType)
admin.site.register(EntityType)
