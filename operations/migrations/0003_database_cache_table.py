"""The database cache table (CACHES["throttle"]: the token endpoint's attempt
counts, shared by every web worker). Made by migrate, so no deployment can
forget ``createcachetable``; running that command as well is harmless."""

from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("operations", "0002_system_workspace")]

    operations = [migrations.RunPython(create_cache_tables, migrations.RunPython.noop)]
