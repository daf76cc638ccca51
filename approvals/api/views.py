import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.api.serializers import (
    ApprovalRequestInput,
    ApprovalRequestOutput,
    PendingActionSerializer,
    TemplateSerializer,
)
from approvals.choices import ActionStatus
from approvals.deadlines import parse_duration
from approvals.models import ApprovalTemplate, PendingAction
from approvals.selectors import (
    approval_template_list_active,
    pending_action_list,
    pending_actions_due_within,
    pending_actions_overdue,
)
from approvals.services import approval_request, pending_action_refresh, pending_action_retry


class ApprovalRequestView(APIView):
    """Hold an action until Knox approves it."""

    @extend_schema(
        request=ApprovalRequestInput,
        responses={201: ApprovalRequestOutput},
        tags=["approvals"],
        summary="Request approval for an action",
    )
    def post(self, request):
        serializer = ApprovalRequestInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        pending_action = approval_request(
            action_type=data["action_type"],
            payload=data["payload"],
            title=data["title"],
            template_name=data["template_name"],
            variables=data["variables"],
            approvers=data.get("approvers") or None,
            user=request.user,
            description=data.get("description") or None,
            deadline=data.get("deadline") or None,
        )
        return Response(ApprovalRequestOutput(pending_action).data, status=status.HTTP_201_CREATED)


class DurationField(forms.CharField):
    """A duration as Bureau writes one (``2h``, ``3d``); a bad one is a field error."""

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return parse_duration(value, what="Duration")
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None


class StrictBooleanField(forms.CharField):
    """true or false (1 or 0); anything else is a field error, never ignored."""

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise forms.ValidationError(f"Give true or false, not {value[:20]!r}.")


@extend_schema_field(OpenApiTypes.STR)
class DurationFilter(django_filters.Filter):
    field_class = DurationField


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


class PendingActionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ActionStatus.choices)
    action_type = django_filters.CharFilter()
    due_within = DurationFilter(
        method="filter_due_within",
        help_text="Still waiting for Knox and due within this duration from now, e.g. 2h, 3d "
        "(overdue ones excluded).",
    )
    overdue = StrictBooleanFilter(
        method="filter_overdue",
        help_text="true: still waiting for Knox past the due time; false: every other action.",
    )

    class Meta:
        model = PendingAction
        fields = ["status", "action_type", "due_within", "overdue"]

    def filter_due_within(self, queryset, name, value):
        return queryset if value is None else pending_actions_due_within(queryset, within=value)

    def filter_overdue(self, queryset, name, value):
        return queryset if value is None else pending_actions_overdue(queryset, overdue=value)


@extend_schema_view(
    list=extend_schema(summary="Pending actions: yours, or all for staff", tags=["approvals"]),
    retrieve=extend_schema(summary="One pending action with its history", tags=["approvals"]),
)
class PendingActionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = PendingAction.objects.none()
    serializer_class = PendingActionSerializer
    filterset_class = PendingActionFilter

    def get_queryset(self):
        return pending_action_list(user=self.request.user)

    # Who may refresh or retry is the service's decision (the admin asks the same):
    # the requester may refresh their own; anything else needs the operate permission.
    @extend_schema(
        request=None,
        summary="Ask Knox about this document now (yours, or with the operate permission)",
        tags=["approvals"],
    )
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        pending_action = self.get_object()
        pending_action_refresh(ap_inf_id=pending_action.ap_inf_id, actor=request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=pending_action.pk)).data)

    @extend_schema(
        request=None,
        summary="Run a failed execution again (needs the operate permission)",
        tags=["approvals"],
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        pending_action = self.get_object()
        pending_action_retry(pending_action_id=pending_action.pk, actor=request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=pending_action.pk)).data)


@extend_schema(tags=["approvals"], summary="Active approval templates and their variables")
class TemplateListView(generics.ListAPIView):
    queryset = ApprovalTemplate.objects.none()
    serializer_class = TemplateSerializer

    def get_queryset(self):
        return approval_template_list_active()
