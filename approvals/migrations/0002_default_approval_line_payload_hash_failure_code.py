"""Issue 8: a template's default approval line, the payload hash kept beside
the contents hash, a stable failure code, and the operate permission."""

import hashlib
import json

from django.db import migrations, models


def hash_existing_payloads(apps, schema_editor):
    """Actions requested before this migration: their payload as it stands is
    the one submitted (the same canonical JSON as approvals.services.payload_sha256)."""
    ApprovalLog = apps.get_model("approvals", "ApprovalLog")
    PendingAction = apps.get_model("approvals", "PendingAction")
    logs = []
    for approval_log_id, payload in PendingAction.objects.values_list(
        "approval_log_id", "action_payload"
    ).iterator():
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        logs.append(
            ApprovalLog(pk=approval_log_id, payload_sha256=hashlib.sha256(canonical.encode()).hexdigest())
        )
    ApprovalLog.objects.bulk_update(logs, ["payload_sha256"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="approvaltemplate",
            name="default_approvers",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text='Used when a request names no approvers: [{"ep_id": "EP-1", "role": 1}, …] '
                "in approval order; roles: 1 approve, 2 consult, 3 approve after, "
                "4 parallel consult, 7 parallel approve, 9 notify.",
                verbose_name="default approval line",
            ),
        ),
        migrations.AddField(
            model_name="approvallog",
            name="payload_sha256",
            field=models.CharField(
                default="",
                help_text="sha256 of the canonical JSON of the payload as requested.",
                max_length=64,
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="pendingaction",
            name="failure_code",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AlterModelOptions(
            name="pendingaction",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    (
                        "operate_pendingaction",
                        "Can check, withdraw, retry and resubmit anyone's pending actions",
                    )
                ],
            },
        ),
        migrations.RunPython(hash_existing_payloads, migrations.RunPython.noop),
    ]
