"""Agent phones, calls between a nurse and a patient, their recordings and event log."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from careloop.contactcenter.choices import CallState, Direction, PhoneKind, RatingStatus


class AgentPhone(models.Model):
    """The phone a user answers calls on: a SIP account at Kamailio or a fixed SIP URI."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_phone"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=PhoneKind.choices)
    sip_username = models.CharField(_("SIP user name"), max_length=64, unique=True)
    # Kept in clear on purpose: Kamailio's htable needs it to check digest responses.
    sip_password = models.CharField(_("SIP password"), max_length=64, blank=True)
    uri = models.CharField(_("SIP URI"), max_length=200)
    registered_contact = models.CharField(_("registered contact"), max_length=200, blank=True)
    last_registration_at = models.DateTimeField(_("last registration seen"), null=True, blank=True)
    registration_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("agent phone")

    def __str__(self) -> str:
        return self.sip_username

    def is_registered(self, now: datetime | None = None) -> bool:
        if self.kind == PhoneKind.FIXED:
            return True
        now = now or timezone.now()
        return bool(self.registration_expires_at and self.registration_expires_at > now)


class Call(models.Model):
    """One nurse ↔ patient conversation: the agent leg and the patient leg of the engine."""

    direction = models.CharField(_("direction"), max_length=10, choices=Direction.choices)
    state = models.CharField(
        _("state"), max_length=20, choices=CallState.choices, default=CallState.DIALING_AGENT
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cc_calls",
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="cc_calls"
    )
    task = models.ForeignKey(
        "followup.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="cc_calls"
    )
    contact = models.ForeignKey(
        "patients.PatientContact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    agent_leg_id = models.CharField(max_length=32, blank=True, db_index=True)
    patient_leg_id = models.CharField(max_length=32, blank=True, db_index=True)
    bridge_id = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(_("started"), default=timezone.now, db_index=True)
    agent_answered_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    cause = models.CharField(_("cause"), max_length=30, blank=True)
    sip_code = models.PositiveSmallIntegerField(_("SIP code"), null=True, blank=True)
    dial_result = models.CharField(max_length=20, blank=True)
    # Post-call satisfaction (F3.3): the patient presses 1-5 after the nurse has left the call.
    rating_status = models.CharField(
        _("rating status"), max_length=10, choices=RatingStatus.choices, blank=True, default=""
    )
    rating = models.PositiveSmallIntegerField(
        _("rating"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
    )
    rated_at = models.DateTimeField(_("rated"), null=True, blank=True)

    class Meta:
        verbose_name = _("call")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"call {self.pk}"

    @property
    def duration(self) -> float | None:
        if self.answered_at is None:
            return None
        end = self.ended_at or timezone.now()
        return (end - self.answered_at).total_seconds()


class Recording(models.Model):
    """A finished recording of a call (Ogg/Opus under the engine data dir)."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="recordings")
    recording_id = models.CharField(max_length=32, unique=True)
    path = models.CharField(max_length=500)
    duration = models.FloatField(_("duration"), default=0)
    partial = models.BooleanField(_("partial"), default=False)
    followup_record = models.ForeignKey(
        "followup.FollowUpRecord",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cc_recordings",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("recording")

    def __str__(self) -> str:
        return self.recording_id


class CallEvent(models.Model):
    """Every engine event about a call, in order (the call's history and CDR)."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    seq = models.BigIntegerField()
    type = models.CharField(max_length=40)
    leg = models.CharField(max_length=10, blank=True)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["seq", "pk"]


class ScreenPopToken(models.Model):
    """A one-time token standing for a caller's number, so the browser never sees the number."""

    token = models.CharField(max_length=64, unique=True)
    phone = models.CharField(max_length=20)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)
