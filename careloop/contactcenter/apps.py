from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_save


def _record_saved(
    sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    """A follow-up outcome just recorded gets the recordings of the calls it was about."""
    if created and not raw:
        from careloop.contactcenter.services import link_recordings

        link_recordings(instance)


class ContactcenterConfig(AppConfig):
    name = "careloop.contactcenter"
    label = "contactcenter"

    def ready(self) -> None:
        post_save.connect(
            _record_saved, sender="followup.FollowUpRecord", dispatch_uid="cc_link_recordings"
        )
