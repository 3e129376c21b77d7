from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    """Outbound campaigns (批量外拨, F4.9): voice notifications, automated questionnaires and
    preview dialling for nurses, run over lists built from follow-up tasks or patients."""

    name = "careloop.campaigns"
    label = "campaigns"

    def ready(self) -> None:
        # The Huey consumer discovers modules named "tasks"; ours is "jobs".
        from careloop.campaigns import jobs, services  # noqa: F401

        services.connect()
