from django.db import migrations


def create_agent_status_row(apps, schema_editor):
    ScanAgentStatus = apps.get_model("scanning", "ScanAgentStatus")
    ScanAgentStatus.objects.get_or_create(id=1)


class Migration(migrations.Migration):
    dependencies = [("scanning", "0001_initial")]

    operations = [migrations.RunPython(create_agent_status_row, migrations.RunPython.noop)]
