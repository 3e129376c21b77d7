from django.apps import AppConfig


class OutreachConfig(AppConfig):
    """Every outbound contact with a patient: the contact policy, the attempts, automated calls."""

    name = "careloop.outreach"
    label = "outreach"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from careloop.contactcenter import hooks
        from careloop.followup.models import Task
        from careloop.outreach import automated, dialler, events, reminders, signals
        from careloop.outreach.choices import Purpose

        post_save.connect(signals.task_saved, sender=Task, dispatch_uid="outreach.task_saved")
        # Engine events of automated calls (and of nurses rung when a patient presses 0).
        hooks.register_event_handler(events.handle_event)
        dialler.register_result_handler(Purpose.FOLLOWUP, automated.on_result)
        dialler.register_result_handler(Purpose.REMINDER, reminders.on_result)
