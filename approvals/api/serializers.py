from rest_framework import serializers

from approvals.choices import DeadlinePolicy, FailureStage, knox_decision_label
from approvals.deadlines import format_duration
from approvals.models import (
    ApprovalTemplate,
    PendingAction,
    PendingActionReminder,
    PendingActionTransition,
)
from approvals.templating import caller_variables


class ApprovalRequestInput(serializers.Serializer):
    action_type = serializers.CharField(max_length=100)
    payload = serializers.JSONField()
    title = serializers.CharField(max_length=500)
    template_name = serializers.CharField(max_length=200)
    variables = serializers.DictField(child=serializers.JSONField(), allow_empty=True)
    approvers = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        allow_empty=True,
        max_length=20,
        help_text="Knox EP IDs in approval order; leave out to use the template's default "
        "approval line.",
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    deadline = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=20,
        help_text="How long Knox has to decide, overriding the template's decision deadline: "
        "a whole number and a unit, s, m, h, d or w (e.g. 2d).",
    )


class ApprovalRequestOutput(serializers.ModelSerializer):
    class Meta:
        model = PendingAction
        fields = ["id", "ap_inf_id", "status"]


class TransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = PendingActionTransition
        fields = ["from_status", "to_status", "actor_name", "reason", "created_at"]


class ReminderSerializer(serializers.ModelSerializer):
    before_deadline = serializers.SerializerMethodField()

    class Meta:
        model = PendingActionReminder
        fields = ["before_deadline", "remind_at", "sent_at", "recipients"]

    def get_before_deadline(self, reminder: PendingActionReminder) -> str:
        return format_duration(reminder.before_deadline)


class PendingActionSerializer(serializers.ModelSerializer):
    subject = serializers.CharField(source="approval_log.subject")
    knox_status = serializers.IntegerField(source="approval_log.knox_status", allow_null=True)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    transitions = TransitionSerializer(many=True, read_only=True, source="transition_list")
    # Blank ("") while the action has not failed: declared so, so the schema says so.
    failure_stage = serializers.ChoiceField(
        choices=FailureStage.choices, allow_blank=True, read_only=True
    )
    # Deadline (issue 13): blank policy and null due_at when the action has none.
    deadline_policy = serializers.ChoiceField(
        choices=DeadlinePolicy.choices, allow_blank=True, read_only=True
    )
    reminders = ReminderSerializer(many=True, read_only=True, source="reminder_list")
    knox_decision = serializers.SerializerMethodField()
    delegate_ep_id = serializers.CharField(
        source="approval_log.delegate_ep_id",
        read_only=True,
        help_text="Approved by delegation (Knox status 5): the delegate's EP ID, when Knox "
        "names one.",
    )

    class Meta:
        model = PendingAction
        fields = [
            "id",
            "ap_inf_id",
            "action_type",
            "action_payload",
            "status",
            "failure_stage",
            "failure_code",
            "subject",
            "knox_status",
            "knox_decision",
            "delegate_ep_id",
            "due_at",
            "deadline_policy",
            "reminders",
            "escalated_at",
            "knox_withdrawn_at",
            "knox_withdraw_error",
            "execution_result",
            "error_message",
            "executed_at",
            "created_by",
            "created_at",
            "updated_at",
            "transitions",
        ]
        read_only_fields = fields

    def get_knox_decision(self, action: PendingAction) -> str:
        """Knox's status in words; status 5 reads "approved by delegation"."""
        return knox_decision_label(action.approval_log.knox_status)


class TemplateSerializer(serializers.ModelSerializer):
    variables = serializers.SerializerMethodField()
    has_default_approvers = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalTemplate
        fields = [
            "id",
            "name",
            "description",
            "variables",
            "has_default_approvers",
            "decision_deadline",
            "reminders_before",
            "deadline_policy",
            "updated_at",
        ]

    def get_variables(self, template: ApprovalTemplate) -> list[str]:
        """The variables a request gives (``payload.<field>`` ones come from the payload)."""
        return sorted(caller_variables(template.content))

    def get_has_default_approvers(self, template: ApprovalTemplate) -> bool:
        """Whether a request may leave out ``approvers``."""
        return bool(template.default_approvers)
