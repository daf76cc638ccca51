from rest_framework.routers import SimpleRouter

from automation.api.views import DeliveryViewSet, ExecutionViewSet, RuleViewSet

router = SimpleRouter()
router.register("rules", RuleViewSet, basename="automation-rule")
router.register("executions", ExecutionViewSet, basename="automation-execution")
router.register("deliveries", DeliveryViewSet, basename="automation-delivery")

urlpatterns = router.urls
