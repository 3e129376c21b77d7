from django.apps import AppConfig


class OutreachConfig(AppConfig):
    """Every outbound contact with a patient: the contact policy, the attempts, automated calls."""

    name = "careloop.outreach"
    label = "outreach"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from careloop.followup.models import Task
        from careloop.outreach import signals

        post_save.connect(signals.task_saved, sender=Task, dispatch_uid="outreach.task_saved")
