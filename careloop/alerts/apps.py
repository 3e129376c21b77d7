from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "careloop.alerts"
    label = "alerts"
