from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "config.observability"
    label = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        from config.observability import checks, task_context  # noqa: F401 - registers checks

        task_context.connect()
