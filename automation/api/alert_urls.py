"""Mounted at /api/v1/alerts/ by config/urls.py:
``path("alerts/", include("automation.api.alert_urls"))``."""

from django.urls import path

from automation.api.views import (
    AcknowledgeAlertView,
    AcknowledgeSelectedView,
    DismissAlertView,
    MyAlertsView,
)

urlpatterns = [
    path("mine/", MyAlertsView.as_view(), name="alerts-mine"),
    path(
        "acknowledge-selected/",
        AcknowledgeSelectedView.as_view(),
        name="alerts-acknowledge-selected",
    ),
    path("<int:alert_id>/acknowledge/", AcknowledgeAlertView.as_view(), name="alerts-acknowledge"),
    path("<int:alert_id>/dismiss/", DismissAlertView.as_view(), name="alerts-dismiss"),
]
