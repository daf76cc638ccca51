import json

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from config.admin_display import admin_link, badge_column, id_links
from config.errors import ApplicationError, Forbidden
from config.observability.attention import AttentionListFilter
from operations.catalog import operation_catalog
from operations.models import OperationRun, Tenant, Workspace, WorkspaceMembership
from operations.tasks import reconcile_runs


def pretty_json(value) -> str:
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str),
    )


def counts_in_words(counts: dict[str, int] | None, *, nothing: str = "nothing to do") -> str:
    """Summary counts as an operator reads them ("executions 1, skipped 2"),
    never a Python dict; ``nothing`` when every count is zero or there are none."""
    said = [f"{key.replace('_', ' ')} {value}" for key, value in sorted((counts or {}).items())]
    return ", ".join(said) if any((counts or {}).values()) else nothing


class ReadOnlyAdminMixin:
    """For records written only by services (ledgers, logs): viewable, never
    added, edited or deleted in the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OperationTypeFilter(admin.SimpleListFilter):
    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        recorded = set(OperationRun.objects.values_list("type", flat=True).distinct())
        labels = dict(operation_catalog.choices())
        return [(key, labels.get(key, key)) for key in sorted(recorded | labels.keys())]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(type=self.value())
        return queryset


class RunKindFilter(admin.SimpleListFilter):
    """Business runs by default: Bureau's own housekeeping (the Knox poll, the
    agent check, reconcile...) runs every minute or so in the system workspace
    and would bury them."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("business", "Business"), ("housekeeping", "Housekeeping"), ("all", "All")]

    def value(self):
        return super().value() or "business"

    def choices(self, changelist):
        # No "All" of Django's own: "all" is a choice, and no choice means business.
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        housekeeping = Q(workspace__slug=settings.BUREAU_SYSTEM_WORKSPACE_SLUG)
        if self.value() == "housekeeping":
            return queryset.filter(housekeeping)
        if self.value() == "all":
            return queryset
        return queryset.exclude(housekeeping)


@admin.register(OperationRun)
class OperationRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ledger is written by services only: read-only here, never deleted."""

    change_list_template = "admin/operations/operationrun/change_list.html"
    list_display = [
        "id",
        "type",
        badge_column("status"),
        badge_column("outcome"),
        "tenant_link",
        "workspace",
        "started_at",
        "duration_display",
    ]
    list_filter = [
        RunKindFilter,
        AttentionListFilter,
        "status",
        "outcome",
        OperationTypeFilter,
        "workspace",
    ]
    # An identity hash is found by its first characters, as a git hash is.
    search_fields = ["=id", "run_identity_hash__startswith", "type"]
    list_select_related = ["tenant", "workspace"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    fields = [
        "id",
        "type",
        "status",
        "outcome",
        "workspace",
        "tenant_link",
        "user",
        "initiator_name",
        "run_identity_hash",
        "started_at",
        "completed_at",
        "duration_display",
        "created_at",
        "updated_at",
        "summary_counts_pretty",
        "failure_summary_pretty",
        "context_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="duration")
    def duration_display(self, run: OperationRun):
        duration = run.duration
        return f"{duration.total_seconds():.1f}s" if duration is not None else "—"

    @admin.display(description="tenant", ordering="tenant")
    def tenant_link(self, run: OperationRun):
        if run.tenant_id is None:
            return "—"
        return admin_link(Tenant, run.tenant_id, run.tenant, site=self.admin_site)

    @admin.display(description="summary counts")
    def summary_counts_pretty(self, run: OperationRun):
        return pretty_json(run.summary_counts)

    @admin.display(description="failure summary")
    def failure_summary_pretty(self, run: OperationRun):
        return pretty_json(run.failure_summary)

    @admin.display(description="context")
    def context_pretty(self, run: OperationRun):
        return format_html(
            "{}{}", pretty_json(run.context), id_links(run.context, site=self.admin_site)
        )

    def get_urls(self):
        return [
            path(
                "reconcile/",
                self.admin_site.admin_view(require_POST(self.reconcile_view)),
                name="operations_operationrun_reconcile",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_reconcile": request.user.has_perm("operations.reconcile_runs"),
        }
        return super().changelist_view(request, extra_context)

    def reconcile_view(self, request):
        # The service checks the permission (the same for every entry point).
        try:
            run = reconcile_runs(user=request.user)
        except Forbidden as error:
            self.message_user(request, error.message, messages.ERROR)
        except ApplicationError as error:
            self.message_user(request, error.message, messages.WARNING)
        else:
            counts = counts_in_words(run.summary_counts, nothing="nothing was stale")
            self.message_user(request, f"Reconciled as run {run.pk}: {counts}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:operations_operationrun_changelist"))


class MembershipInline(admin.TabularInline):
    model = WorkspaceMembership
    extra = 0
    autocomplete_fields = ["user"]


class TenantInline(admin.TabularInline):
    model = Tenant
    extra = 0
    fields = ["name", "external_id", "created_at"]
    readonly_fields = ["external_id", "created_at"]
    show_change_link = True


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "member_count", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, TenantInline]

    @admin.display(description="members")
    def member_count(self, workspace: Workspace):
        return workspace.memberships.count()


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "external_id", "created_at"]
    list_filter = ["workspace"]
    search_fields = ["name", "external_id"]
    readonly_fields = ["external_id", "created_at"]
    list_select_related = ["workspace"]


# django-q2's task pages, their values in words (a module of its own: it
# replaces django-q2's registrations, which must exist first).
from operations import task_admin  # noqa: E402, F401
