"""The web side of scanning: people (token or session), never agents.
Thin views: an input serializer, a service call, an output serializer."""

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import Conflict, NotFound
from scanning import selectors, services
from scanning.api.authentication import CanOperateScanner, IsPerson
from scanning.api.filters import DocumentFilter, ScanJobFilter
from scanning.api.serializers import (
    BatchSerializer,
    CancelSerializer,
    CommitSerializer,
    DocumentSerializer,
    ScanJobCreateSerializer,
    ScanJobSerializer,
    ScanJobUpdateSerializer,
)
from scanning.models import Document, ScanJob


def _job_response(job: ScanJob, code=status.HTTP_200_OK) -> Response:
    job = (
        ScanJob.objects.prefetch_related("batches")
        .select_related("created_by", "document")
        .get(pk=job.pk)
    )
    return Response(ScanJobSerializer(job).data, status=code)


@extend_schema_view(
    list=extend_schema(summary="List scan jobs, newest first", tags=["scanning"]),
    retrieve=extend_schema(summary="One scan job with its batches", tags=["scanning"]),
)
class ScanJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [CanOperateScanner]
    serializer_class = ScanJobSerializer
    filterset_class = ScanJobFilter
    queryset = ScanJob.objects.prefetch_related("batches").select_related("created_by", "document")

    @extend_schema(
        summary="Create a scan job (draft)",
        tags=["scanning"],
        request=ScanJobCreateSerializer,
        responses={201: ScanJobSerializer},
    )
    def create(self, request):
        data = _valid(ScanJobCreateSerializer, request.data)
        job = services.scan_job_create(
            title=data["title"], settings=data.get("settings"), actor=request.user
        )
        return _job_response(job, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Edit a draft's title or settings",
        tags=["scanning"],
        request=ScanJobUpdateSerializer,
        responses={200: ScanJobSerializer},
    )
    def partial_update(self, request, pk=None):
        data = _valid(ScanJobUpdateSerializer, request.data)
        job = services.scan_job_update(
            job_id=self._job_id(pk),
            title=data.get("title"),
            settings=data.get("settings"),
            actor=request.user,
        )
        return _job_response(job)

    @extend_schema(summary="Queue a draft for the scanner", tags=["scanning"], request=None)
    @action(detail=True, methods=["post"])
    def queue(self, request, pk=None):
        return _job_response(services.scan_job_queue(job_id=self._job_id(pk), actor=request.user))

    @extend_schema(summary="Cancel a job", tags=["scanning"], request=CancelSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        data = _valid(CancelSerializer, request.data)
        job = services.scan_job_cancel(
            job_id=self._job_id(pk), actor=request.user, reason=data.get("reason", "")
        )
        return _job_response(job)

    @extend_schema(
        summary="Commit the previewed PDF into the inbox (title may change)",
        tags=["scanning"],
        request=CommitSerializer,
    )
    @action(detail=True, methods=["post"])
    def commit(self, request, pk=None):
        data = _valid(CommitSerializer, request.data)
        job = services.scan_job_commit(
            job_id=self._job_id(pk), actor=request.user, title=data.get("title")
        )
        return _job_response(job)

    @extend_schema(
        summary="Assemble again after a failed assembly (needs the scanner slot)",
        tags=["scanning"],
        request=None,
    )
    @action(detail=True, methods=["post"], url_path="retry-assembly")
    def retry_assembly(self, request, pk=None):
        job = services.scan_job_retry_assembly(
            job_id=self._job_id(pk), actor=request.user, run_now=False
        )
        return _job_response(job, status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Resume a job whose agent was lost: queue it again, keeping its scanned "
        "batches (the agent scans on at the next batch)",
        tags=["scanning"],
        request=None,
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return _job_response(services.scan_job_resume(job_id=self._job_id(pk), actor=request.user))

    @extend_schema(
        summary="Assemble the batches a job kept when its agent was lost (needs the scanner slot)",
        tags=["scanning"],
        request=None,
    )
    @action(detail=True, methods=["post"], url_path="assemble-kept")
    def assemble_kept(self, request, pk=None):
        job = services.scan_job_assemble_kept(job_id=self._job_id(pk), actor=request.user)
        return _job_response(job, status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="The assembled PDF (needs scanning.view_document, like the document itself)",
        tags=["scanning"],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, 409: OpenApiResponse()},
    )
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        if not str(pk).isdigit():
            raise selectors.scan_job_not_found(pk)
        job = selectors.scan_job_preview_for_reader(job_id=int(pk), user=request.user)
        if not job.file:
            raise Conflict(
                f"Scan job {job.pk} has no assembled PDF yet.",
                code="scan_job.no_preview",
                extra={"current_state": job.status},
            )
        return _pdf_response(job.file, f"scan-job-{job.pk}.pdf")

    def _job_id(self, pk) -> int:
        return self.get_object().pk  # 404 for a job that does not exist


class BatchDiscardView(APIView):
    permission_classes = [CanOperateScanner]

    @extend_schema(
        summary="Discard a jammed batch (the agent rescans it)",
        tags=["scanning"],
        request=None,
        responses={200: BatchSerializer},
    )
    def post(self, request, pk: int):
        batch = services.scan_batch_discard(batch_id=pk, actor=request.user)
        return Response(BatchSerializer(batch).data)


@extend_schema_view(
    list=extend_schema(summary="Documents (the inbox), newest first", tags=["scanning"]),
    retrieve=extend_schema(summary="One document", tags=["scanning"]),
)
class DocumentViewSet(viewsets.ReadOnlyModelViewSet):
    """Reading documents needs ``scanning.view_document`` (as the admin's
    Documents page does): without it the list is empty and a document is a 404."""

    permission_classes = [IsPerson]
    serializer_class = DocumentSerializer
    filterset_class = DocumentFilter
    queryset = Document.objects.none()

    def get_queryset(self):
        return selectors.documents_for_reader(user=self.request.user)

    @extend_schema(
        summary="The document's PDF",
        tags=["scanning"],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"])
    def file(self, request, pk=None):
        document = self.get_object()
        return _pdf_response(document.file, f"document-{document.pk}.pdf")


def _pdf_response(field_file, filename: str) -> FileResponse:
    """Stream a stored PDF; a file gone from storage is a 404 with a code, not a 500."""
    try:
        handle = field_file.storage.open(field_file.name, "rb")
    except FileNotFoundError:
        raise NotFound(
            f"The stored file {field_file.name} is missing.", code="scanning.file_missing"
        ) from None
    return FileResponse(handle, content_type="application/pdf", filename=filename)


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
