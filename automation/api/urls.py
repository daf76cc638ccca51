from django.urls import path
from rest_framework.routers import SimpleRouter

from automation.api.inbound import InboundEventView
from automation.api.views import DeliveryViewSet, ExecutionViewSet, RuleViewSet

router = SimpleRouter()
router.register("rules", RuleViewSet, basename="automation-rule")
router.register("executions", ExecutionViewSet, basename="automation-execution")
router.register("deliveries", DeliveryViewSet, basename="automation-delivery")

urlpatterns = [
    *router.urls,
    path("inbound/<slug:source>/", InboundEventView.as_view(), name="automation-inbound"),
]
