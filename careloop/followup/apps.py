from django.apps import AppConfig


class FollowupConfig(AppConfig):
    name = "careloop.followup"
    label = "followup"

    def ready(self) -> None:
        # The Huey consumer discovers modules named "tasks"; ours is "jobs".
        from careloop.followup import jobs  # noqa: F401
