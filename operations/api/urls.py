from rest_framework.routers import SimpleRouter

from operations.api.views import OperationRunViewSet

router = SimpleRouter()
router.register("runs", OperationRunViewSet, basename="operation-run")

urlpatterns = router.urls
