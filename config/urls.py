from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

from config.health import healthz
from config.observability.metrics import metrics_view
from config.observability.readiness import readyz

admin.site.site_header = "Bureau operator console"
admin.site.site_title = "Bureau"
admin.site.index_title = "Operations"

api_v1 = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("operations/", include("operations.api.urls")),
    path("approvals/", include("approvals.api.urls")),
    path("automation/", include("automation.api.urls")),
    path("alerts/", include("automation.api.alert_urls")),
    path("scanning/", include("scanning.api.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
]
