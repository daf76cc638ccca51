"""created_date / updated_date become created_at / updated_at, the names the
rest of Bureau uses. The columns keep the seed's names (db_column), so this
changes nothing in the database: `manage.py sqlmigrate automation 0005`
prints no SQL."""

from django.db import migrations, models

CREATED = ["actiontemplate", "alert", "alertrecipient", "automationrule", "entity"]
CREATED += ["idempotencyrecord", "notificationdelivery"]
UPDATED = ["alert", "automationrule", "notificationdelivery", "notificationprofile"]


def _renamed(model: str, old: str, new: str, **field) -> list:
    return [
        migrations.RenameField(model_name=model, old_name=old, new_name=new),
        migrations.AlterField(
            model_name=model,
            name=new,
            field=models.DateTimeField(db_column=old, verbose_name=old.replace("_", " "), **field),
        ),
    ]


class Migration(migrations.Migration):
    dependencies = [
        ("automation", "0004_alert_status_change"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveIndex(model_name="alert", name="alert_created"),
                *[
                    op
                    for model in CREATED
                    for op in _renamed(model, "created_date", "created_at", auto_now_add=True)
                ],
                *[
                    op
                    for model in UPDATED
                    for op in _renamed(model, "updated_date", "updated_at", auto_now=True)
                ],
                migrations.AddIndex(
                    model_name="alert",
                    index=models.Index(fields=["created_at"], name="alert_created"),
                ),
                migrations.AlterModelOptions(
                    name="alert", options={"ordering": ["-created_at", "-id"]}
                ),
                migrations.AlterModelOptions(
                    name="idempotencyrecord", options={"ordering": ["-created_at"]}
                ),
                migrations.AlterModelOptions(
                    name="notificationdelivery",
                    options={
                        "ordering": ["-created_at", "-id"],
                        "verbose_name_plural": "notification deliveries",
                    },
                ),
            ],
        ),
    ]
