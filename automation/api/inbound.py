"""The inbound webhook endpoint: an external system posts a signed event.

No user token: the signature is the authentication (the scheme and the
order of the checks are in ``automation.services.inbound``)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from automation import conf
from automation.services.inbound import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InboundPost,
    InboundRefused,
    inbound_event_receive,
)
from config.parsers import JSONParser
from config.schema import ErrorSerializer

# What a 401 names as the way to authenticate (RFC 9110 asks for one).
AUTH_SCHEME = f'Bureau-HMAC-SHA256 header="{SIGNATURE_HEADER}"'


class InboundAcceptedSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="`accepted`")
    event = serializers.IntegerField(help_text="The outbox event the post became.")
    source = serializers.CharField()
    idempotency_key = serializers.CharField()


class InboundRepeatSerializer(ErrorSerializer):
    event = serializers.IntegerField(
        allow_null=True, help_text="The event the first post with this key became."
    )

    class Meta:
        ref_name = "InboundRepeat"


def _content_length(request) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


class InboundEventView(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    # Only for the schema: the view reads the raw body (it is what is signed).
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Post a signed event from an external system (an inbound source)",
        description=(
            "No token: the signature authenticates. Sign `<timestamp>.<idempotency key>.<body>` "
            "(the raw body) with HMAC-SHA256 and the source's secret; send "
            f"`{SIGNATURE_HEADER}: sha256=<hex>`, `{TIMESTAMP_HEADER}` (Unix seconds, within "
            "AUTOMATION_INBOUND_TOLERANCE_SECONDS of the server's clock) and "
            f"`{IDEMPOTENCY_HEADER}`. An unknown or inactive source answers as a bad "
            "signature does. The body is a JSON object; rules with the `inbound` trigger on "
            "the entity `inbound:<source>` match its fields."
        ),
        tags=["automation"],
        parameters=[
            OpenApiParameter(
                SIGNATURE_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="`sha256=` and the hex HMAC-SHA256 of the signed content.",
            ),
            OpenApiParameter(
                TIMESTAMP_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="When the post was signed, in Unix seconds.",
            ),
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="The sender's id for the event (1–100 visible ASCII characters); "
                "a repeat is answered 409 and never processed again.",
            ),
        ],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            202: InboundAcceptedSerializer,
            400: OpenApiResponse(
                ErrorSerializer, description="The body is not a JSON object, or the key is bad."
            ),
            401: OpenApiResponse(
                ErrorSerializer,
                description="Bad or missing signature, unknown or inactive source, or a "
                "timestamp outside the tolerance.",
            ),
            409: OpenApiResponse(
                InboundRepeatSerializer,
                description="This idempotency key was received already (`event` names it).",
            ),
            413: OpenApiResponse(
                ErrorSerializer, description="The body is over AUTOMATION_INBOUND_MAX_BYTES."
            ),
        },
    )
    def post(self, request, source: str):
        length = _content_length(request)
        post = InboundPost(
            # A body over the limit is not read: the service refuses it by its length.
            body=request.body if length <= conf.inbound_max_bytes() else b"",
            signature=request.headers.get(SIGNATURE_HEADER),
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
            content_length=length,
        )
        try:
            event = inbound_event_receive(source_slug=source, post=post)
        except InboundRefused as refused:
            headers = {"WWW-Authenticate": AUTH_SCHEME} if refused.status_code == 401 else None
            return Response(refused.as_dict(), status=refused.status_code, headers=headers)
        return Response(
            {
                "status": "accepted",
                "event": event.pk,
                "source": source,
                "idempotency_key": event.object_pk,
            },
            status=202,
        )
