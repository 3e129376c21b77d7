from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class CoreConfig(AppConfig):
    name = "careloop.core"
    label = "core"

    def ready(self) -> None:
        # Huey's Django integration only imports ``tasks`` modules; our apps keep their jobs in ``jobs.py``.
        autodiscover_modules("jobs")
