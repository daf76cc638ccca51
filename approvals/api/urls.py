from django.urls import path
from rest_framework.routers import SimpleRouter

from approvals.api.views import ApprovalRequestView, PendingActionViewSet, TemplateListView

router = SimpleRouter()
router.register("pending-actions", PendingActionViewSet, basename="pending-action")

urlpatterns = [
    path("requests/", ApprovalRequestView.as_view(), name="approval-request"),
    path("templates/", TemplateListView.as_view(), name="approval-templates"),
    *router.urls,
]
