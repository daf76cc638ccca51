from rest_framework import serializers

from approvals.choices import FailureStage
from approvals.models import ApprovalTemplate, PendingAction, PendingActionTransition
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


class ApprovalRequestOutput(serializers.ModelSerializer):
    class Meta:
        model = PendingAction
        fields = ["id", "ap_inf_id", "status"]


class TransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = PendingActionTransition
        fields = ["from_status", "to_status", "actor_name", "reason", "created_at"]


class PendingActionSerializer(serializers.ModelSerializer):
    subject = serializers.CharField(source="approval_log.subject")
    knox_status = serializers.IntegerField(source="approval_log.knox_status", allow_null=True)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    transitions = TransitionSerializer(many=True, read_only=True)
    # Blank ("") while the action has not failed: declared so, so the schema says so.
    failure_stage = serializers.ChoiceField(
        choices=FailureStage.choices, allow_blank=True, read_only=True
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
            "execution_result",
            "error_message",
            "executed_at",
            "created_by",
            "created_at",
            "updated_at",
            "transitions",
        ]
        read_only_fields = fields


class TemplateSerializer(serializers.ModelSerializer):
    variables = serializers.SerializerMethodField()
    has_default_approvers = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalTemplate
        fields = ["id", "name", "description", "variables", "has_default_approvers", "updated_at"]

    def get_variables(self, template: ApprovalTemplate) -> list[str]:
        """The variables a request gives (``payload.<field>`` ones come from the payload)."""
        return sorted(caller_variables(template.content))

    def get_has_default_approvers(self, template: ApprovalTemplate) -> bool:
        """Whether a request may leave out ``approvers``."""
        return bool(template.default_approvers)
