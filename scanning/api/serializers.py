from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from scanning.choices import MAX_RESOLUTION, MIN_RESOLUTION, ScanJobStatus, ScanMode, ScanSource
from scanning.models import Document, ScanJob, ScanJobBatch
from scanning.selectors import scan_batch_next_seq


class ScanSettingsSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=ScanMode.choices, required=False)
    resolution = serializers.IntegerField(
        min_value=MIN_RESOLUTION, max_value=MAX_RESOLUTION, required=False
    )
    source = serializers.ChoiceField(choices=ScanSource.choices, required=False)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {"settings": [f"Unknown settings: {', '.join(unknown)}."]}
                )
        return super().to_internal_value(data)


@extend_schema_field(
    {"type": "string", "description": f"The job's state: one of {', '.join(ScanJobStatus.values)}."}
)
class ScanJobStatusField(serializers.CharField):
    """The job state. Documented as a described string, not an enum: two
    components share it, and drf-spectacular would give a shared enum a
    hashed name (a schema warning) unless settings named it."""


class BatchSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScanJobBatch
        fields = [
            "id",
            "batch_seq",
            "status",
            "page_count",
            "size_bytes",
            "sha256",
            "created_at",
            "discarded_at",
        ]
        read_only_fields = fields


class DocumentRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = ["id", "title"]
        read_only_fields = fields


class ScanJobSerializer(serializers.ModelSerializer):
    status = ScanJobStatusField(read_only=True)
    batches = BatchSerializer(many=True, read_only=True)
    preview_url = serializers.SerializerMethodField()
    duplicate_of = DocumentRefSerializer(
        read_only=True,
        allow_null=True,
        help_text="Set when the commit found the file already in the inbox: the existing "
        "document the job now points to (no new document was created).",
    )
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = ScanJob
        fields = [
            "id",
            "title",
            "settings",
            "status",
            "batch_count",
            "page_count",
            "file_hash",
            "document",
            "duplicate_of",
            "error_code",
            "error",
            "created_by",
            "queued_at",
            "last_activity_at",
            "last_progress_at",
            "finished_at",
            "created_at",
            "updated_at",
            "preview_url",
            "batches",
        ]
        read_only_fields = fields

    def get_preview_url(self, job: ScanJob) -> str | None:
        if not job.file:
            return None
        return reverse("scanning:job-preview", kwargs={"pk": job.pk})


class ScanJobCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=300)
    settings = ScanSettingsSerializer(required=False)


class ScanJobUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=300, required=False)
    settings = ScanSettingsSerializer(required=False)


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True)


class CommitSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=300, required=False)


class DocumentSerializer(serializers.ModelSerializer):
    file_url = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = [
            "id",
            "title",
            "sha256",
            "page_count",
            "size_bytes",
            "in_inbox",
            "source_job",
            "created_at",
            "file_url",
        ]
        read_only_fields = fields

    def get_file_url(self, document: Document) -> str:
        return reverse("scanning:document-file", kwargs={"pk": document.pk})


# --- agent side -------------------------------------------------------------------------


class HeartbeatSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=100, required=False, allow_blank=True)
    current_job = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class AgentJobStateSerializer(serializers.ModelSerializer):
    """A job's state after an agent call, without the batch list (which grows
    with every batch; ``GET agent/jobs/{id}/`` has it)."""

    status = ScanJobStatusField(read_only=True)
    next_batch_seq = serializers.SerializerMethodField()

    class Meta:
        model = ScanJob
        fields = [
            "id",
            "title",
            "settings",
            "status",
            "batch_count",
            "page_count",
            "next_batch_seq",
        ]
        read_only_fields = fields

    def get_next_batch_seq(self, job: ScanJob) -> int:
        return scan_batch_next_seq(job=job)


class AgentJobSerializer(AgentJobStateSerializer):
    """What an agent needs to scan a job: its state and its batches."""

    batches = BatchSerializer(many=True, read_only=True)

    class Meta(AgentJobStateSerializer.Meta):
        fields = [*AgentJobStateSerializer.Meta.fields, "batches"]
        read_only_fields = fields

    def get_next_batch_seq(self, job: ScanJob) -> int:
        # The batches are loaded for the list anyway: no second query.
        seqs = [batch.batch_seq for batch in job.batches.all()]
        return max(seqs, default=0) + 1


class StartBatchSerializer(serializers.Serializer):
    batch_seq = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="The batch about to be scanned (the job's next_batch_seq). Starting it "
        "again while it is being scanned answers the same job: a retry is safe.",
    )


class BatchUploadSerializer(serializers.Serializer):
    batch_seq = serializers.IntegerField(min_value=1)
    file = serializers.FileField(allow_empty_file=False)


class FailSerializer(serializers.Serializer):
    error = serializers.CharField(max_length=4000)


class HeartbeatResponseSerializer(serializers.Serializer):
    last_heartbeat = serializers.DateTimeField()
    active_job = AgentJobStateSerializer(allow_null=True)
