from django.urls import include, path
from rest_framework.routers import SimpleRouter

from scanning.api import agent_views
from scanning.api.views import BatchDiscardView, DocumentViewSet, ScanJobViewSet

app_name = "scanning"

router = SimpleRouter()
router.register("jobs", ScanJobViewSet, basename="job")
router.register("documents", DocumentViewSet, basename="document")

agent_urls = [
    path("heartbeat/", agent_views.HeartbeatView.as_view(), name="heartbeat"),
    path("claim/", agent_views.ClaimView.as_view(), name="claim"),
    path("jobs/<int:pk>/", agent_views.AgentJobView.as_view(), name="job"),
    path("jobs/<int:pk>/batches/start/", agent_views.StartBatchView.as_view(), name="batch-start"),
    path("jobs/<int:pk>/batches/", agent_views.UploadBatchView.as_view(), name="batch-upload"),
    path("jobs/<int:pk>/finish/", agent_views.FinishView.as_view(), name="finish"),
    path("jobs/<int:pk>/fail/", agent_views.FailView.as_view(), name="fail"),
]

urlpatterns = [
    path("agent/", include((agent_urls, "agent"))),
    path("batches/<int:pk>/discard/", BatchDiscardView.as_view(), name="batch-discard"),
    *router.urls,
]
