from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path, reverse_lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.auth import TokenView
from config.health import healthz
from config.observability.metrics import metrics_view
from config.observability.readiness import readyz

admin.site.site_header = "Bureau operator console"
admin.site.site_title = "Bureau"
admin.site.index_title = "Operations"

api_v1 = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    # Both need a signed-in user (SERVE_PERMISSIONS); a browser without a session is
    # sent to the admin's login page and back.
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/",
        login_required(
            SpectacularSwaggerView.as_view(url_name="api-schema"),
            login_url=reverse_lazy("admin:login"),
        ),
        name="api-docs",
    ),
    path("operations/", include("operations.api.urls")),
    path("approvals/", include("approvals.api.urls")),
    path("automation/", include("automation.api.urls")),
    path("alerts/", include("automation.api.alert_urls")),
    path("scanning/", include("scanning.api.urls")),
]


def favicon(request):
    """Browsers ask for /favicon.ico whatever the page says: send them to the static file
    (its URL is looked up per request, so it is the hashed name once collected)."""
    return HttpResponseRedirect(static("bureau/favicon.png"))


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("favicon.ico", favicon, name="favicon"),
]

# JSON {code, detail} under /api/, Django's pages elsewhere (config.http).
handler400 = "config.http.bad_request"
handler403 = "config.http.permission_denied"
handler404 = "config.http.page_not_found"
handler500 = "config.http.server_error"
