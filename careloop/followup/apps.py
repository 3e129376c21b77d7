from django.apps import AppConfig


class FollowupConfig(AppConfig):
    name = "careloop.followup"
    label = "followup"
