from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "careloop.core"
    label = "core"
