from __future__ import annotations

from rest_framework import serializers

from automation.choices import (
    AlertStatus,
    DeliveryChannel,
    DeliveryStatus,
    ExecutionStatus,
    Severity,
)
from automation.conf import MAX_DB_INT
from automation.models import (
    ActionTemplate,
    Alert,
    AutomationExecution,
    AutomationRule,
    Entity,
    NotificationDelivery,
    RuleAction,
    RuleVersion,
    TriggerType,
)
from automation.services.versions import rule_version_diff
from automation.webhooks import mask_config


class JSONValueField(serializers.JSONField):
    """A JSON field that refuses null also when it comes from a form. A
    multipart or urlencoded body carries JSON as text: DRF checks for null
    before decoding it, so ``"null"`` would slip through as None."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value is None and not self.allow_null:
            self.fail("null")
        return value


class ActionInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    action_type = serializers.CharField(max_length=50)
    action_config = JSONValueField(required=False, default=dict)
    execution_order = serializers.IntegerField(min_value=1, max_value=MAX_DB_INT)
    is_active = serializers.BooleanField(required=False, default=True)
    template = serializers.PrimaryKeyRelatedField(
        queryset=ActionTemplate.objects.filter(is_active=True), required=False, allow_null=True
    )


class RuleInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    entity = serializers.SlugRelatedField(
        slug_field="name", queryset=Entity.objects.filter(is_active=True)
    )
    trigger_type = serializers.SlugRelatedField(
        slug_field="name", queryset=TriggerType.objects.filter(is_active=True)
    )
    trigger_conditions = JSONValueField(required=False, default=dict)
    cron_expression = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    is_active = serializers.BooleanField(required=False, default=True)
    actions = ActionInputSerializer(many=True, required=False, default=list)
    depends_on = serializers.PrimaryKeyRelatedField(
        queryset=AutomationRule.objects.all(), many=True, required=False, default=list
    )


class RuleActionSerializer(serializers.ModelSerializer):
    """An action as readers see it: credentials in a webhook URL masked."""

    class Meta:
        model = RuleAction
        fields = [
            "id",
            "name",
            "description",
            "action_type",
            "action_config",
            "execution_order",
            "is_active",
            "template",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["action_config"] = mask_config(data["action_config"])
        return data


class RuleSerializer(serializers.ModelSerializer):
    entity = serializers.SlugRelatedField(slug_field="name", read_only=True)
    entity_type = serializers.SlugRelatedField(slug_field="name", read_only=True)
    trigger_type = serializers.SlugRelatedField(slug_field="name", read_only=True)
    actions = serializers.SerializerMethodField()
    depends_on = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    updated_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    deactivated_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    # The seed's names in the answers; the models say created_at / updated_at.
    created_date = serializers.DateTimeField(source="created_at", read_only=True)
    updated_date = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = AutomationRule
        fields = [
            "id",
            "name",
            "description",
            "entity",
            "entity_type",
            "trigger_type",
            "trigger_conditions",
            "cron_expression",
            "next_run_at",
            "last_run_at",
            "version",
            "is_active",
            "actions",
            "depends_on",
            "created_date",
            "updated_date",
            "created_by",
            "updated_by",
            "deactivated_by",
            "deactivated_at",
        ]
        read_only_fields = fields

    # ``.all()``: a list prefetches both (RuleViewSet), in RuleAction's own
    # order (execution_order, id); a single rule reads them here.
    def get_actions(self, rule) -> list[dict]:
        return RuleActionSerializer(rule.actions.all(), many=True).data

    def get_depends_on(self, rule) -> list[int]:
        return sorted(link.parent_rule_id for link in rule.parent_links.all())


class DryRunInputSerializer(serializers.Serializer):
    entity = serializers.CharField(max_length=200)
    id = serializers.CharField(max_length=100)
    changes = serializers.DictField(required=False, default=dict)


class RuleVersionSerializer(serializers.ModelSerializer):
    saved_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = RuleVersion
        fields = ["version", "saved_at", "saved_by", "definition"]
        read_only_fields = fields


class RuleVersionDetailSerializer(RuleVersionSerializer):
    diff = serializers.SerializerMethodField(help_text="Unified diff from the version before.")

    class Meta(RuleVersionSerializer.Meta):
        fields = [*RuleVersionSerializer.Meta.fields, "diff"]
        read_only_fields = fields

    def get_diff(self, version) -> str:
        return rule_version_diff(version=version)


class BacktestDefinitionSerializer(RuleInputSerializer):
    """A rule body as for a create; the name may be left out."""

    name = serializers.CharField(max_length=200, required=False, default="")


class BacktestInputSerializer(serializers.Serializer):
    """A saved ``rule`` or an unsaved ``definition``, and a window: the last
    ``days`` days, or ``since`` (to ``until``, default now)."""

    rule = serializers.PrimaryKeyRelatedField(queryset=AutomationRule.objects.all(), required=False)
    definition = BacktestDefinitionSerializer(required=False)
    days = serializers.IntegerField(min_value=1, max_value=366, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    sample_size = serializers.IntegerField(min_value=0, max_value=200, default=50)

    def validate(self, attrs):
        if ("rule" in attrs) == ("definition" in attrs):
            raise serializers.ValidationError(
                {"rule": ["Give a saved rule's id or a rule definition (one of the two)."]}
            )
        if ("days" in attrs) == ("since" in attrs):
            raise serializers.ValidationError({"days": ["Give days, or since (and until)."]})
        return attrs


class ExecutionSerializer(serializers.ModelSerializer):
    rule_name = serializers.CharField(source="rule.name", read_only=True)
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)

    class Meta:
        model = AutomationExecution
        fields = [
            "id",
            "rule",
            "rule_name",
            "rule_version",
            "event",
            "schedule_slot",
            "entity_type",
            "object_pk",
            "trigger_data",
            "actions_executed",
            "status",
            "error_message",
            "execution_time_ms",
            "depth",
            "executed_at",
        ]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    channel = serializers.ChoiceField(choices=DeliveryChannel.choices)
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    subject = serializers.SerializerMethodField()
    message = serializers.SerializerMethodField()

    # The seed's names in the answers; the models say created_at / updated_at.
    created_date = serializers.DateTimeField(source="created_at", read_only=True)
    updated_date = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = NotificationDelivery
        fields = [
            "id",
            "notification_id",
            "execution",
            "rule",
            "action",
            "recipient",
            "channel",
            "status",
            "subject",
            "message",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "sent_at",
            "delivered_at",
            "failed_at",
            "error_message",
            "provider_response",
            "created_date",
            "updated_date",
        ]
        read_only_fields = fields

    def get_subject(self, delivery) -> str:
        return delivery.payload.get("subject", "")

    def get_message(self, delivery) -> str:
        return delivery.payload.get("message", "")


class AlertSerializer(serializers.ModelSerializer):
    """One of the reader's alerts: ``status`` is the reader's own state (their
    acknowledgement or dismissal, else the alert's when it is closed), and
    ``alert_status`` the alert's as a whole, which anyone's acknowledgement sets."""

    severity = serializers.ChoiceField(choices=Severity.choices)
    status = serializers.ChoiceField(
        source="recipient_status",
        choices=AlertStatus.choices,
        help_text="Your own state of this alert.",
    )
    alert_status = serializers.ChoiceField(
        source="status",
        choices=AlertStatus.choices,
        help_text="The alert as a whole: acknowledged once any recipient acknowledged it.",
    )

    # The seed's names in the answers; the models say created_at / updated_at.
    created_date = serializers.DateTimeField(source="created_at", read_only=True)
    updated_date = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "alert_type",
            "severity",
            "title",
            "message",
            "context",
            "source_entity_name",
            "source_entity_id",
            "source_rule",
            "status",
            "alert_status",
            "expires_date",
            "created_date",
            "updated_date",
        ]
        read_only_fields = fields


class AcknowledgeInputSerializer(serializers.Serializer):
    notes = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class AcknowledgeSelectedInputSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=500
    )
    notes = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class AcknowledgementSerializer(serializers.Serializer):
    alert = serializers.IntegerField(source="alert_id")
    kind = serializers.CharField()
    acknowledged_date = serializers.DateTimeField()
    notes = serializers.CharField()


class MyAlertsQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=AlertStatus.choices, required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
