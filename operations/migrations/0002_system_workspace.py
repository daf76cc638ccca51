from django.conf import settings
from django.db import migrations


def create_system_workspace(apps, schema_editor):
    Workspace = apps.get_model("operations", "Workspace")
    Workspace.objects.get_or_create(
        slug=settings.BUREAU_SYSTEM_WORKSPACE_SLUG, defaults={"name": "System"}
    )


class Migration(migrations.Migration):
    """Bureau's own housekeeping runs (Knox polling, agent checks, reconcile)
    belong to this workspace, so every run has one."""

    dependencies = [("operations", "0001_initial")]

    operations = [migrations.RunPython(create_system_workspace, migrations.RunPython.noop)]
