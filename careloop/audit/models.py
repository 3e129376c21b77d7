from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    VIEW_PATIENT = "view_patient", _("Viewed patient record")
    REVEAL_PHONE = "reveal_phone", _("Revealed phone number")
    REVEAL_ID = "reveal_id", _("Revealed ID number")
    CHANGE_PATIENT = "change_patient", _("Changed patient record")
    EXPORT = "export", _("Exported a list")
    IMPORT = "import", _("Imported a file")
    PLAY_RECORDING = "play_recording", _("Played a recording")
    DOWNLOAD_RECORDING = "download_recording", _("Downloaded a recording")
    LOGIN = "login", _("Logged in")
    LOGIN_FAILED = "login_failed", _("Failed login")
    LOCKED_OUT = "locked_out", _("Account locked")


class AuditEvent(models.Model):
    """Who read or changed which record, when and from where (F7.6). Rows are never updated."""

    at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(_("user name"), max_length=150, blank=True)
    action = models.CharField(
        _("action"), max_length=32, choices=AuditAction.choices, db_index=True
    )
    patient = models.ForeignKey(
        "patients.Patient", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    object_type = models.CharField(_("object type"), max_length=50, blank=True)
    object_id = models.CharField(_("object id"), max_length=50, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
