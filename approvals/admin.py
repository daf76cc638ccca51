from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import escape, format_html

from approvals.choices import IN_FLIGHT, ActionStatus, FailureStage, knox_decision_label
from approvals.deadlines import format_duration
from approvals.forms import ApprovalRequestForm, ApprovalTemplateForm, KnoxProfileFormSet
from approvals.models import (
    ApprovalLog,
    ApprovalTemplate,
    KnoxProfile,
    PendingAction,
    PendingActionTransition,
)
from approvals.selectors import (
    knox_approver_search,
    knox_approvers_named,
    pending_actions_due_within,
    pending_actions_overdue,
)
from approvals.services import (
    OPERATE_PERMISSION,
    ApprovalSubmitFailed,
    approval_request,
    pending_action_expire,
    pending_action_refresh,
    pending_action_resubmit,
    pending_action_retry,
    pending_action_withdraw,
)
from approvals.templating import (
    approval_template_fill,
    split_sample_variables,
    template_variables,
)
from config.admin_actions import ActionFailed, ObjectAction, ObjectActionsMixin
from config.admin_display import (
    JSON_WIDGETS,
    PrettyJSONWhenReadOnlyMixin,
    badge_column,
    id_links,
    in_state_for,
)
from config.errors import ApplicationError, error_text
from config.observability.attention import AttentionListFilter
from operations.admin import ReadOnlyAdminMixin, pretty_json

User = get_user_model()


def _report(modeladmin, request, done: list[str], failed: list[str]) -> None:
    if done:
        modeladmin.message_user(request, "; ".join(done), messages.SUCCESS)
    if failed:
        modeladmin.message_user(request, "; ".join(failed), messages.ERROR)


class TransitionInline(admin.TabularInline):
    model = PendingActionTransition
    extra = 0
    can_delete = False
    fields = ["created_at", "from_status", "to_status", "actor_name", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class DueListFilter(admin.SimpleListFilter):
    """Issue 13: actions still waiting for Knox past their due time, or due soon."""

    title = "due within / overdue"
    parameter_name = "due"
    WITHIN = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), *((k, f"Due within {k}") for k in self.WITHIN)]

    def queryset(self, request, queryset):
        if self.value() == "overdue":
            return pending_actions_overdue(queryset)
        if self.value() in self.WITHIN:
            return pending_actions_due_within(queryset, within=self.WITHIN[self.value()])
        return queryset


def _failed_at(stage):
    return lambda action: action.status == ActionStatus.FAILED and action.failure_stage == stage


def _outcome(action: PendingAction) -> str:
    """The action's state in words; ActionFailed when it ended failed."""
    line = f"Pending action {action.pk}: {action.get_status_display().lower()}."
    if action.status == ActionStatus.FAILED:
        raise ActionFailed(f"{line} {action.failure_code}: {action.error_message}".strip(": "))
    return line


@admin.register(PendingAction)
class PendingActionAdmin(ObjectActionsMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "action_type",
        badge_column("status"),
        in_state_for,
        "failure_stage",
        "ap_inf_id",
        "created_by",
        "created_at",
        "due_at",
        "executed_at",
    ]
    list_filter = [AttentionListFilter, DueListFilter, "status", "action_type", "failure_stage"]
    search_fields = ["=ap_inf_id", "=id"]
    list_select_related = ["created_by"]
    date_hierarchy = "created_at"
    inlines = [TransitionInline]
    # Check and withdraw are offered to everyone who sees the list (a requester
    # may for their own); retry and resubmit only with the operate permission.
    # The services decide, row by row, and say why not.
    actions = [
        "check_status_now",
        "retry_execution_action",
        "resubmit_action_",
        "withdraw_action_",
    ]
    # On the detail page, the same services (and permission checks) as the bulk actions.
    object_actions = (
        ObjectAction(
            "check_status",
            "Check status in Knox",
            available=lambda action: action.status in IN_FLIGHT,
        ),
        ObjectAction("retry", "Retry execution", available=_failed_at(FailureStage.EXECUTE)),
        ObjectAction("resubmit", "Resubmit to Knox", available=_failed_at(FailureStage.SUBMIT)),
        ObjectAction(
            "withdraw",
            "Withdraw from Knox",
            available=lambda action: action.status in IN_FLIGHT,
            confirm="Withdraw this approval request from Knox? The action will not be "
            "executed, and this cannot be undone.",
        ),
        ObjectAction(
            "expire",
            "Expire now",
            available=lambda action: action.status in IN_FLIGHT and action.due_at is not None,
            confirm="Expire this action now, before its deadline? It will not be executed, "
            "its document is withdrawn from Knox, and this cannot be undone.",
        ),
    )
    fields = [
        "id",
        "ap_inf_id",
        "action_type",
        "status",
        "failure_stage",
        "failure_code",
        "error_message",
        "created_by",
        "created_at",
        "updated_at",
        "executed_at",
        "payload_pretty",
        "result_pretty",
        "approval_log_link",
        "knox_decision",
        "due_at",
        "deadline_policy",
        "reminders_sent",
        "escalated_at",
        "escalation_alert_id",
        "knox_withdrawn_at",
        "knox_withdraw_attempts",
        "knox_withdraw_error",
    ]
    readonly_fields = fields

    @admin.display(description="Knox decision")
    def knox_decision(self, action):
        """Status 5 reads "approved by delegation", with the delegate's EP ID."""
        log = action.approval_log
        label = knox_decision_label(log.knox_status) or "-"
        return f"{label} ({log.delegate_ep_id})" if log.delegate_ep_id else label

    @admin.display(description="reminders")
    def reminders_sent(self, action):
        lines = []
        for reminder in action.reminders.all():
            when = (
                f"sent {reminder.sent_at:%Y-%m-%d %H:%M} to {', '.join(reminder.recipients)}"
                if reminder.sent_at
                else f"due {reminder.remind_at:%Y-%m-%d %H:%M}"
            )
            lines.append(f"{format_duration(reminder.before_deadline)} before: {when}")
        return "; ".join(lines) or "-"

    @admin.display(description="payload")
    def payload_pretty(self, action):
        return pretty_json(action.action_payload)

    @admin.display(description="execution result")
    def result_pretty(self, action):
        result = action.execution_result
        return format_html("{}{}", pretty_json(result), id_links(result, site=self.admin_site))

    @admin.display(description="approval log")
    def approval_log_link(self, action):
        url = reverse("admin:approvals_approvallog_change", args=[action.approval_log_id])
        return format_html('<a href="{}">{}</a>', url, action.ap_inf_id)

    def has_change_permission(self, request, obj=None):
        return False  # read-only detail; changes go through the actions below

    def has_delete_permission(self, request, obj=None):
        return False

    def has_operate_permission(self, request):
        return request.user.has_perm(OPERATE_PERMISSION)

    def get_urls(self):
        return [
            path(
                "request/",
                self.admin_site.admin_view(self.request_view),
                name="approvals_pendingaction_request",
            ),
            path(
                "request/approvers/",
                self.admin_site.admin_view(self.approver_lookup_view),
                name="approvals_pendingaction_request_approvers",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:approvals_pendingaction_request"))

    def request_view(self, request):
        """Request an approval from the console: the same service as the API.
        The form's fields follow the chosen template and action type (a GET
        with ``?template=…&action_type=…``, or a POST sent back with ``_refresh``
        or from a page whose choice changed: then nothing is requested)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            form = ApprovalRequestForm(
                user=request.user, initial=ApprovalRequestForm.initial_from(request.GET)
            )
            return self._request_page(request, form)
        form = ApprovalRequestForm(request.POST, user=request.user)
        if "_refresh" in request.POST or form.stale:
            if "_refresh" not in request.POST:
                self.message_user(
                    request,
                    "The fields below are for the template and action type now chosen: "
                    "check them and submit again. Nothing was requested.",
                    messages.WARNING,
                )
            form = ApprovalRequestForm(
                user=request.user, initial=ApprovalRequestForm.initial_from(request.POST)
            )
            return self._request_page(request, form)
        if form.is_valid():
            data = form.cleaned_data
            try:
                action = approval_request(
                    action_type=data["action_type"],
                    payload=data["payload"],
                    title=data["title"],
                    template_name=data["template"].name,
                    variables=data["variables"],
                    approvers=data["approvers"],
                    user=request.user,
                    description=data["description"] or None,
                    deadline=data.get("deadline") or None,
                )
            except ValidationError as error:
                form.add_service_errors(error)
            except ApprovalSubmitFailed as error:  # recorded on the action: show the list
                self.message_user(request, error.message, messages.ERROR)
                return HttpResponseRedirect(reverse("admin:approvals_pendingaction_changelist"))
            except ApplicationError as error:  # refused (not authorized): nothing written
                form.add_error(None, error.message)
            else:
                self.message_user(
                    request,
                    f"Submitted to Knox as {action.ap_inf_id} ({action.status}).",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:approvals_pendingaction_change", args=[action.pk])
                )
        return self._request_page(request, form)

    def _request_page(self, request, form: ApprovalRequestForm):
        """The request form, with who the approvers named so far are (for
        someone who may request approvals; nobody else learns whose an EP ID is)."""
        try:
            named = knox_approvers_named(user=request.user, ep_ids=form.approver_ep_ids())
            may_look_up = True
        except ApplicationError as refusal:
            named, may_look_up = {}, False
            self.message_user(request, refusal.message, messages.WARNING)
        context = {
            **self.admin_site.each_context(request),
            "title": "Request approval",
            "form": form,
            "opts": self.model._meta,
            "may_look_up": may_look_up,
            "approvers_named": [(ep_id, named.get(ep_id)) for ep_id in form.approver_ep_ids()],
        }
        return TemplateResponse(request, "admin/approvals/pendingaction/request.html", context)

    def approver_lookup_view(self, request):
        """JSON for the request form: people whose name matches ``?q=``, with
        their Knox EP IDs. Checked as the request form is, and the selector
        answers only someone who may request approvals."""
        if not self.has_view_permission(request):
            return JsonResponse({"detail": "You may not request approvals."}, status=403)
        try:
            people = knox_approver_search(user=request.user, name=request.GET.get("q", ""))
        except ApplicationError as refusal:
            return JsonResponse(refusal.as_dict(), status=refusal.status_code)
        return JsonResponse({"results": people})

    def do_check_status(self, request, action):
        return _outcome(pending_action_refresh(ap_inf_id=action.ap_inf_id, actor=request.user))

    def do_retry(self, request, action):
        return _outcome(pending_action_retry(pending_action_id=action.pk, actor=request.user))

    def do_resubmit(self, request, action):
        try:
            action = pending_action_resubmit(pending_action_id=action.pk, actor=request.user)
        except ApprovalSubmitFailed:
            action.refresh_from_db()  # failed again, recorded on the action
        return _outcome(action)

    def do_withdraw(self, request, action):
        return _outcome(
            pending_action_withdraw(
                pending_action_id=action.pk,
                actor=request.user,
                reason=f"withdrawn by {request.user.get_username()}",
            )
        )

    def do_expire(self, request, action):
        expired = pending_action_expire(
            pending_action_id=action.pk,
            actor=request.user,
            reason=f"expired by {request.user.get_username()}",
        )
        line = _outcome(expired)
        if expired.knox_withdrawn_at is None:
            raise ActionFailed(
                f"{line} Knox has not confirmed the withdrawal yet "
                f"({expired.knox_withdraw_error or 'no answer'}); the deadline sweep tries "
                "again every minute."
            )
        return line

    @admin.action(description="Check status in Knox now")
    def check_status_now(self, request, queryset):
        def check(action):
            action = pending_action_refresh(ap_inf_id=action.ap_inf_id, actor=request.user)
            return action.status != ActionStatus.FAILED, action

        self._each(request, queryset, check)

    @admin.action(description="Retry execution (failed after approval)", permissions=["operate"])
    def retry_execution_action(self, request, queryset):
        def retry(action):
            action = pending_action_retry(pending_action_id=action.pk, actor=request.user)
            return action.status == ActionStatus.EXECUTED, action

        self._each(request, queryset, retry)

    @admin.action(description="Resubmit to Knox (failed submit)", permissions=["operate"])
    def resubmit_action_(self, request, queryset):
        def resubmit(action):
            try:
                action = pending_action_resubmit(pending_action_id=action.pk, actor=request.user)
            except ApprovalSubmitFailed:
                action.refresh_from_db()  # failed again, recorded on the action
            return action.status != ActionStatus.FAILED, action

        self._each(request, queryset, resubmit)

    @admin.action(description="Withdraw from Knox")
    def withdraw_action_(self, request, queryset):
        def withdraw(action):
            action = pending_action_withdraw(
                pending_action_id=action.pk,
                actor=request.user,
                reason=f"withdrawn by {request.user.get_username()}",
            )
            return True, action

        self._each(request, queryset, withdraw)

    def _each(self, request, queryset, change) -> None:
        """Apply ``change`` to each selected action; what ended failed or was
        refused is reported as an error, the rest as done."""
        done, failed = [], []
        for action in queryset.order_by("pk"):
            try:
                ok, action = change(action)
            except (ApplicationError, ValidationError) as error:
                failed.append(f"{action.pk}: {error_text(error, sep='; ')}")
                continue
            line = f"{action.pk}: {action.status}"
            if ok:
                done.append(line)
            else:
                failed.append(f"{line} ({action.failure_code}) {action.error_message}".strip())
        _report(self, request, done, failed)


@admin.register(ApprovalLog)
class ApprovalLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "ap_inf_id",
        "subject",
        "knox_status",
        "submitted_by",
        "submitted_at",
        "decided_at",
        "last_checked_at",
    ]
    list_filter = ["knox_status"]
    search_fields = ["=ap_inf_id", "subject"]
    fields = [
        "ap_inf_id",
        "subject",
        "knox_status",
        "delegate_ep_id",
        "submitted_by",
        "submitted_at",
        "decided_at",
        "last_checked_at",
        "contents_sha256",
        "approvers_pretty",
        "contents_preview",
        "last_response_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="approvers")
    def approvers_pretty(self, log):
        return pretty_json(log.approvers)

    @admin.display(description="last Knox answer")
    def last_response_pretty(self, log):
        return pretty_json(log.last_knox_response)

    @admin.display(description="contents as submitted")
    def contents_preview(self, log):
        return _sandboxed(log.contents)


def _sandboxed(html: str):
    """``html`` shown as a document of its own. Always escaped into the
    attribute, a SafeString too (a rendered template is one), so the browser
    shows exactly ``html``, as Knox receives it."""
    return format_html(
        '<iframe sandbox srcdoc="{}" style="width:100%;max-width:800px;height:320px;border:1px solid #ccc"></iframe>',
        escape(html),
    )


@admin.register(ApprovalTemplate)
class ApprovalTemplateAdmin(PrettyJSONWhenReadOnlyMixin, admin.ModelAdmin):
    form = ApprovalTemplateForm
    formfield_overrides = JSON_WIDGETS
    pretty_json_fields = {
        "sample_variables": "sample_variables_pretty",
        "default_approvers": "default_approvers_pretty",
        "reminder_recipients": "reminder_recipients_pretty",
        "escalation_recipients": "escalation_recipients_pretty",
    }
    list_display = [
        "name",
        "is_active",
        "variable_names",
        "decision_deadline",
        "deadline_policy",
        "updated_by",
        "updated_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "description"]
    readonly_fields = ["preview", "created_by", "updated_by", "created_at", "updated_at"]

    @admin.display(description="variables")
    def variable_names(self, template):
        return ", ".join(sorted(template_variables(template.content)))

    @admin.display(description="sample variables")
    def sample_variables_pretty(self, template):
        return pretty_json(template.sample_variables)

    @admin.display(description="default approvers")
    def default_approvers_pretty(self, template):
        return pretty_json(template.default_approvers)

    @admin.display(description="reminder recipients")
    def reminder_recipients_pretty(self, template):
        return pretty_json(template.reminder_recipients)

    @admin.display(description="escalation recipients")
    def escalation_recipients_pretty(self, template):
        return pretty_json(template.escalation_recipients)

    @admin.display(description="preview with the sample variables")
    def preview(self, template):
        """The template's part of the document as Knox receives it (after the
        summary of the action to run): the submit's own function, so the same
        escaping; the ``payload.<field>`` samples stand for the payload."""
        if not template.pk:
            return "Save to see a preview."
        variables, payload = split_sample_variables(template.sample_variables or {})
        try:
            rendered = approval_template_fill(
                template.content, variables=variables, shown_payload=payload
            )
        except KeyError as missing:
            return f"No sample value for {missing}."
        return _sandboxed(str(rendered))

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


class KnoxProfileInline(admin.StackedInline):
    model = KnoxProfile
    formset = KnoxProfileFormSet  # saves through knox_profile_set
    can_delete = False
    verbose_name_plural = "Knox"
    fields = ["ep_id"]


class BureauUserAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, KnoxProfileInline]


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, BureauUserAdmin)
