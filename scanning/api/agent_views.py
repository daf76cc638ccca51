"""The agent API: scan agent tokens only (``ScanAgentTokenAuthentication``)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.parsers import FormParser, JSONParser, MultiPartParser
from scanning import conf, selectors, services
from scanning.api.authentication import IsScanAgent, ScanAgentTokenAuthentication
from scanning.api.serializers import (
    AgentJobSerializer,
    AgentJobStateSerializer,
    BatchSerializer,
    BatchUploadSerializer,
    FailSerializer,
    HeartbeatResponseSerializer,
    HeartbeatSerializer,
    StartBatchSerializer,
)

# Room for the multipart framing and the batch_seq field around the file.
MULTIPART_OVERHEAD = 64 * 1024


class AgentView(APIView):
    authentication_classes = [ScanAgentTokenAuthentication]
    permission_classes = [IsScanAgent]

    @property
    def agent(self):
        return self.request.auth


def _job_data(job_id: int, agent) -> dict:
    return AgentJobSerializer(selectors.scan_job_for_agent(job_id=job_id, agent=agent)).data


class HeartbeatView(AgentView):
    @extend_schema(
        summary="Agent heartbeat; answers with the job holding the scanner, if any",
        tags=["scanning agent"],
        request=HeartbeatSerializer,
        responses={200: HeartbeatResponseSerializer},
    )
    def post(self, request):
        serializer = HeartbeatSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        agent_status = services.scan_agent_heartbeat(
            agent=self.agent,
            version=data.get("version", ""),
            current_job_id=data.get("current_job"),
        )
        active = selectors.scan_job_active_get()
        return Response(
            {
                "last_heartbeat": agent_status.last_heartbeat,
                "active_job": AgentJobStateSerializer(active).data
                if active is not None and selectors.agent_may_see(active, self.agent)
                else None,
            }
        )


class ClaimView(AgentView):
    @extend_schema(
        summary="Claim the oldest queued job (it becomes ready)",
        tags=["scanning agent"],
        request=None,
        responses={200: AgentJobSerializer, 204: OpenApiResponse(description="nothing to scan")},
    )
    def post(self, request):
        job = services.scan_job_claim(agent=self.agent)
        if job is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_job_data(job.pk, self.agent))


class AgentJobView(AgentView):
    @extend_schema(
        summary="A job as the agent sees it", tags=["scanning agent"], responses=AgentJobSerializer
    )
    def get(self, request, pk: int):
        return Response(_job_data(pk, self.agent))


class StartBatchView(AgentView):
    @extend_schema(
        summary="Start scanning a batch (ready → scanning); retrying the same batch is safe",
        tags=["scanning agent"],
        request=StartBatchSerializer,
        responses=AgentJobStateSerializer,
    )
    def post(self, request, pk: int):
        serializer = StartBatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = services.scan_job_start_batch(
            job_id=pk, agent=self.agent, batch_seq=serializer.validated_data.get("batch_seq")
        )
        return Response(AgentJobStateSerializer(job).data)


class UploadBatchView(AgentView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Upload a scanned batch (PDF); retrying the same file is safe",
        tags=["scanning agent"],
        request={"multipart/form-data": BatchUploadSerializer},
        responses={201: BatchSerializer, 200: BatchSerializer},
    )
    def post(self, request, pk: int):
        # Refuse an oversized body before reading it (the service checks the file itself too).
        limit = conf.max_batch_bytes()
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit + MULTIPART_OVERHEAD:
            raise ValidationError(
                {"file": [f"The request is {declared} bytes; the batch limit is {limit} bytes."]}
            )
        serializer = BatchUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        batch, created = services.scan_batch_upload(
            job_id=pk,
            batch_seq=serializer.validated_data["batch_seq"],
            upload=serializer.validated_data["file"],
            agent=self.agent,
        )
        return Response(
            BatchSerializer(batch).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class FinishView(AgentView):
    @extend_schema(
        summary="No more batches: assemble (ready → assembling)",
        tags=["scanning agent"],
        request=None,
        responses=AgentJobStateSerializer,
    )
    def post(self, request, pk: int):
        job = services.scan_job_finish(job_id=pk, agent=self.agent)
        return Response(AgentJobStateSerializer(job).data)


class FailView(AgentView):
    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        summary="The agent could not scan the job",
        tags=["scanning agent"],
        request=FailSerializer,
        responses=AgentJobStateSerializer,
    )
    def post(self, request, pk: int):
        serializer = FailSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.scan_job_fail(
            job_id=pk, agent=self.agent, error=serializer.validated_data["error"]
        )
        return Response(_job_data(pk, self.agent))
