from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from automation import selectors, services
from automation.api.serializers import (
    AcknowledgeInputSerializer,
    AcknowledgementSerializer,
    AcknowledgeSelectedInputSerializer,
    AlertSerializer,
    BacktestInputSerializer,
    DeliverySerializer,
    DryRunInputSerializer,
    ExecutionSerializer,
    MyAlertsQuerySerializer,
    RuleInputSerializer,
    RuleSerializer,
    RuleVersionDetailSerializer,
    RuleVersionSerializer,
)
from automation.choices import DeliveryChannel, DeliveryStatus, ExecutionStatus
from automation.models import AutomationExecution, AutomationRule, NotificationDelivery
from automation.permissions import DRY_RUN_RULE, may
from config.api import Pagination


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django's model permissions, with ``view`` required to read."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }


class CanDryRun(permissions.BasePermission):
    """A dry run writes nothing: the dry-run or the change permission will do
    (the service checks the same)."""

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and may(user, DRY_RUN_RULE))


class RuleFilter(django_filters.FilterSet):
    entity = django_filters.CharFilter(field_name="entity__name")
    trigger_type = django_filters.CharFilter(field_name="trigger_type__name")
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = AutomationRule
        fields = ["entity", "trigger_type", "is_active"]


@extend_schema_view(
    list=extend_schema(summary="List automation rules", tags=["automation"]),
    retrieve=extend_schema(summary="One rule with its actions", tags=["automation"]),
    create=extend_schema(request=RuleInputSerializer, summary="Create a rule", tags=["automation"]),
    update=extend_schema(
        request=RuleInputSerializer, summary="Replace a rule", tags=["automation"]
    ),
    partial_update=extend_schema(
        request=RuleInputSerializer, summary="Change a rule", tags=["automation"]
    ),
    destroy=extend_schema(
        summary="Delete a rule (deactivated instead when history points at it)",
        responses={
            200: OpenApiResponse(RuleSerializer, description="Deactivated: history points at it."),
            204: OpenApiResponse(description="Deleted."),
        },
        tags=["automation"],
    ),
)
class RuleViewSet(viewsets.ModelViewSet):
    queryset = AutomationRule.objects.select_related(
        "entity", "entity_type", "trigger_type", "created_by", "updated_by", "deactivated_by"
    ).order_by("name", "id")
    serializer_class = RuleSerializer
    permission_classes = [ModelPermissions]
    filterset_class = RuleFilter

    def get_queryset(self):
        rules = super().get_queryset()
        if self.action == "list":
            # A page of rules in a constant number of queries. Only lists: a
            # write answers with the rule it changed, read afresh.
            rules = rules.prefetch_related("actions", "parent_links")
        return rules

    def get_permissions(self):
        if self.action in ("dry_run", "backtest"):
            return [CanDryRun()]
        return super().get_permissions()

    def create(self, request):
        data = RuleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = services.rule_save(actor=request.user, **data.validated_data)
        return Response(RuleSerializer(rule).data, status=status.HTTP_201_CREATED)

    def update(self, request, pk=None, partial=False):
        rule = self.get_object()
        data = RuleInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        actions = values.pop("actions", None)
        depends_on = values.pop("depends_on", None)
        if partial:
            actions = actions if "actions" in request.data else None
            depends_on = depends_on if "depends_on" in request.data else None
            values = {k: v for k, v in values.items() if k in request.data}
        rule = services.rule_save(
            rule=rule, actor=request.user, actions=actions, depends_on=depends_on, **values
        )
        return Response(RuleSerializer(rule).data)

    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)

    def destroy(self, request, pk=None):
        rule = services.rule_delete(rule=self.get_object(), actor=request.user)
        if rule is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(RuleSerializer(rule).data, status=status.HTTP_200_OK)

    @extend_schema(
        request=DryRunInputSerializer,
        responses={200: dict},
        summary="What the rule would do for one row: nothing is written or sent",
        tags=["automation"],
    )
    @action(detail=True, methods=["post"], url_path="dry-run")
    def dry_run(self, request, pk=None):
        rule = self.get_object()
        data = DryRunInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.rule_dry_run(
            rule=rule,
            entity=data.validated_data["entity"],
            object_id=data.validated_data["id"],
            changes=data.validated_data["changes"],
            actor=request.user,
        )
        return Response(result)

    @extend_schema(
        responses={200: RuleVersionSerializer(many=True)},
        summary="The rule's kept versions, newest first",
        tags=["automation"],
    )
    @action(detail=True, methods=["get"], url_path="versions", pagination_class=Pagination)
    def versions(self, request, pk=None):
        rule = self.get_object()
        versions = rule.versions.select_related("saved_by").order_by("-version")
        page = self.paginate_queryset(versions)
        return self.get_paginated_response(RuleVersionSerializer(page, many=True).data)

    @extend_schema(
        responses={200: RuleVersionDetailSerializer},
        summary="One kept version, with its diff from the version before",
        tags=["automation"],
    )
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version>[0-9]{1,9})")
    def version(self, request, pk=None, version=None):
        rule = self.get_object()
        kept = get_object_or_404(rule.versions.select_related("saved_by"), version=int(version))
        return Response(RuleVersionDetailSerializer(kept).data)

    @extend_schema(
        request=BacktestInputSerializer,
        responses={200: dict},
        summary="What a rule would have done over a past window: nothing is written or sent",
        description=(
            "Matches a saved rule, or a rule definition that is not saved, against the "
            "outbox events stored in the window, and compares with the executions the "
            "rules really made for those events."
        ),
        tags=["automation"],
    )
    @action(detail=False, methods=["post"], url_path="backtest")
    def backtest(self, request):
        data = BacktestInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = services.rule_backtest(
            actor=request.user,
            rule=values.get("rule"),
            definition=values.get("definition"),
            window=services.Window.of(
                days=values.get("days"), since=values.get("since"), until=values.get("until")
            ),
            sample_size=values["sample_size"],
        )
        return Response(result)


class ExecutionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ExecutionStatus.choices)
    rule = django_filters.NumberFilter(field_name="rule_id", min_value=1)
    event = django_filters.NumberFilter(field_name="event_id", min_value=1)

    class Meta:
        model = AutomationExecution
        fields = ["status", "rule", "event"]


@extend_schema_view(
    list=extend_schema(summary="Rule executions, newest first", tags=["automation"]),
    retrieve=extend_schema(summary="One execution with per-action detail", tags=["automation"]),
)
class ExecutionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = AutomationExecution.objects.none()
    serializer_class = ExecutionSerializer
    permission_classes = [ModelPermissions]
    filterset_class = ExecutionFilter

    def get_queryset(self):
        return selectors.executions_list()


class DeliveryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    channel = django_filters.ChoiceFilter(choices=DeliveryChannel.choices)
    rule = django_filters.NumberFilter(field_name="rule_id", min_value=1)
    execution = django_filters.NumberFilter(field_name="execution_id", min_value=1)

    class Meta:
        model = NotificationDelivery
        fields = ["status", "channel", "rule", "execution"]


@extend_schema_view(
    list=extend_schema(summary="Notification deliveries, newest first", tags=["automation"]),
    retrieve=extend_schema(summary="One delivery", tags=["automation"]),
)
class DeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    """Operators with the view permission see every delivery; anyone else
    sees their own (which is how in-app notifications are read)."""

    queryset = NotificationDelivery.objects.none()
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilter

    def get_queryset(self):
        deliveries = selectors.deliveries_list()
        if self.request.user.has_perm("automation.view_notificationdelivery"):
            return deliveries
        return deliveries.filter(recipient_user=self.request.user)

    @extend_schema(request=None, summary="Retry a delivery now", tags=["automation"])
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        # A delivery the caller may not see is a 404 (get_object); the service
        # refuses (403) one they may see but not retry.
        delivery = self.get_object()
        delivery = services.delivery_retry(delivery_id=delivery.pk, actor=request.user)
        return Response(DeliverySerializer(delivery).data)


# --- alerts (mounted under /api/v1/alerts/ by automation/api/alert_urls.py) --------------


@extend_schema_view(
    get=extend_schema(
        parameters=[MyAlertsQuerySerializer],
        summary="My alerts (expired ones hidden), a page at a time",
        tags=["alerts"],
    )
)
class MyAlertsView(generics.ListAPIView):
    serializer_class = AlertSerializer
    pagination_class = Pagination
    filter_backends: list = []  # status and severity are read by MyAlertsQuerySerializer

    def get_queryset(self):
        query = MyAlertsQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.alerts_mine(
            self.request.user,
            status=query.validated_data.get("status") or None,
            severity=query.validated_data.get("severity") or None,
        )


class AcknowledgeAlertView(APIView):
    @extend_schema(
        request=AcknowledgeInputSerializer,
        responses=AcknowledgementSerializer,
        summary="Acknowledge one of my alerts",
        tags=["alerts"],
    )
    def post(self, request, alert_id: int):
        data = AcknowledgeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ack = services.alert_acknowledge(
            alert_id=alert_id, user=request.user, **data.validated_data
        )
        return Response(AcknowledgementSerializer(ack).data)


class DismissAlertView(APIView):
    @extend_schema(
        request=AcknowledgeInputSerializer,
        responses=AcknowledgementSerializer,
        summary="Dismiss one of my alerts",
        tags=["alerts"],
    )
    def post(self, request, alert_id: int):
        data = AcknowledgeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ack = services.alert_dismiss(alert_id=alert_id, user=request.user, **data.validated_data)
        return Response(AcknowledgementSerializer(ack).data)


class AcknowledgeSelectedView(APIView):
    @extend_schema(
        request=AcknowledgeSelectedInputSerializer,
        responses=dict,
        summary="Acknowledge several of my alerts (all or nothing)",
        tags=["alerts"],
    )
    def post(self, request):
        data = AcknowledgeSelectedInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.alerts_acknowledge_selected(
            alert_ids=data.validated_data["ids"],
            user=request.user,
            notes=data.validated_data["notes"],
        )
        return Response(result)
