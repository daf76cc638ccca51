# Inbound webhooks (issue 13): the inbound trigger and entity kind, the sources,
# and one outbox event per source and idempotency key.

import django.db.models.deletion
from django.db import migrations, models

TRIGGERS = [
    ("on_create", "On create"),
    ("on_update", "On update"),
    ("on_delete", "On delete"),
    ("scheduled", "Scheduled"),
    ("inbound", "Inbound webhook"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("automation", "0007_merge_deliveries_list_indexes_rule_versions"),
    ]

    operations = [
        migrations.AlterField(
            model_name="automationevent",
            name="trigger",
            field=models.CharField(choices=TRIGGERS, max_length=20),
        ),
        migrations.AlterField(
            model_name="triggertype",
            name="name",
            field=models.CharField(choices=TRIGGERS, max_length=50, unique=True),
        ),
        migrations.AlterField(
            model_name="entitytype",
            name="name",
            field=models.CharField(
                choices=[
                    ("table", "Table"),
                    ("view", "View"),
                    ("inbound", "Inbound webhook source"),
                ],
                max_length=50,
                unique=True,
            ),
        ),
        migrations.AddConstraint(
            model_name="automationevent",
            constraint=models.UniqueConstraint(
                condition=models.Q(("trigger", "inbound")),
                fields=("entity", "object_pk"),
                name="uniq_inbound_event_key",
            ),
        ),
        migrations.CreateModel(
            name="InboundSource",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "slug",
                    models.SlugField(
                        help_text="The source's part of the URL: "
                        "/api/v1/automation/inbound/<slug>/. Fixed once created.",
                        unique=True,
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                ("description", models.TextField(blank=True)),
                (
                    "secret_setting",
                    models.CharField(
                        help_text="The setting (environment variable) holding this source's "
                        "HMAC key: one of the AUTOMATION_INBOUND_SECRET_<NAME> names listed in "
                        "AUTOMATION_INBOUND_SECRETS.",
                        max_length=100,
                    ),
                ),
                (
                    "is_active",
                    models.BooleanField(
                        default=True,
                        help_text="An inactive source refuses every post (as a bad signature).",
                    ),
                ),
                ("accepted", models.PositiveBigIntegerField(default=0)),
                ("refused_signature", models.PositiveBigIntegerField(default=0)),
                ("refused_inactive", models.PositiveBigIntegerField(default=0)),
                ("refused_timestamp", models.PositiveBigIntegerField(default=0)),
                ("refused_body", models.PositiveBigIntegerField(default=0)),
                ("refused_too_large", models.PositiveBigIntegerField(default=0)),
                ("refused_repeat", models.PositiveBigIntegerField(default=0)),
                ("last_accepted_at", models.DateTimeField(blank=True, null=True)),
                ("last_refused_at", models.DateTimeField(blank=True, null=True)),
                (
                    "last_refusal",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("signature", "Bad or missing signature"),
                            ("inactive", "Source inactive"),
                            ("timestamp", "Stale, future or malformed timestamp"),
                            ("body", "Malformed body or idempotency key"),
                            ("too_large", "Body too large"),
                            ("repeat", "Repeated idempotency key"),
                        ],
                        max_length=20,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "entity",
                    models.OneToOneField(
                        editable=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="inbound_source",
                        to="automation.entity",
                    ),
                ),
            ],
            options={
                "ordering": ["slug"],
            },
        ),
    ]
