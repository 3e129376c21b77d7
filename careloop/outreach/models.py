"""The hospital's contact policy, every outbound contact attempt, and patients' contact blocks."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from careloop.followup.choices import Channel
from careloop.outreach.choices import (
    AttemptState,
    BlockKind,
    BlockSource,
    Purpose,
    ReminderKind,
    ReminderStatus,
)


def default_windows() -> list[dict[str, object]]:
    """Every day 08:30–12:00 and 14:00–20:00 (Asia/Shanghai): outside them is quiet time."""
    days = [1, 2, 3, 4, 5, 6, 7]
    return [
        {"days": days, "from": "08:30", "to": "12:00"},
        {"days": days, "from": "14:00", "to": "20:00"},
    ]


class ContactPolicy(models.Model):
    """One row (pk 1): the rules every contact with a patient obeys, whoever or whatever makes it.

    ``windows`` are the hours patients may be contacted (ISO weekdays 1 = Monday … 7 = Sunday,
    local times); the rest of the day is quiet. ``holidays`` are dates without any contact,
    ``workdays`` make-up working days (调休) that follow Monday's hours.
    """

    windows = models.JSONField(_("contact hours"), default=default_windows)
    holidays = models.JSONField(_("holidays"), default=list, blank=True)
    workdays = models.JSONField(_("make-up working days"), default=list, blank=True)
    max_per_day = models.PositiveSmallIntegerField(_("contacts per patient per day"), default=2)
    max_per_week = models.PositiveSmallIntegerField(_("contacts per patient per week"), default=5)
    automated_attempts = models.PositiveSmallIntegerField(
        _("automated call attempts per step"), default=3
    )
    automated_retry_minutes = models.PositiveIntegerField(
        _("minutes between automated attempts"), default=120
    )
    automated_concurrency = models.PositiveSmallIntegerField(
        _("automated calls at once"), default=10
    )
    ring_timeout = models.PositiveSmallIntegerField(_("ring time (seconds)"), default=30)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("contact policy")
        verbose_name_plural = _("contact policy")

    def __str__(self) -> str:
        return str(_("contact policy"))


class ContactAttempt(models.Model):
    """One outbound contact with a patient (a nurse's call, an automated call, a campaign call,
    later an SMS): what the contact policy counts and what a finished step cancels."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="contact_attempts"
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    purpose = models.CharField(_("purpose"), max_length=20, choices=Purpose.choices)
    state = models.CharField(
        _("state"), max_length=20, choices=AttemptState.choices, default=AttemptState.SCHEDULED
    )
    task = models.ForeignKey(
        "followup.Task",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="contact_attempts",
    )
    call = models.ForeignKey(
        "contactcenter.Call",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="contact_attempts",
    )
    reminder = models.ForeignKey(
        "outreach.Reminder",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attempts",
    )
    #: Engine dial result (answered, busy, no_answer, rejected, unreachable, failed) or what
    #: happened on an answered automated call (completed, opted_out, to_nurse, no_consent, ...).
    result = models.CharField(_("result"), max_length=30, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    attempt_no = models.PositiveSmallIntegerField(_("attempt"), default=1)
    priority = models.SmallIntegerField(default=0)
    not_before = models.DateTimeField(_("not before"), null=True, blank=True)
    leg_id = models.CharField(max_length=32, blank=True, db_index=True)
    #: Flow reference, variables given to the flow and what came back (keys, answers).
    data = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("contact attempt")
        verbose_name_plural = _("contact attempts")
        indexes = [
            models.Index(fields=["state", "not_before"]),
            models.Index(fields=["patient", "started_at"]),
        ]

    def __str__(self) -> str:
        return f"contact {self.pk}"


class ContactBlock(models.Model):
    """A patient's standing "do not contact me" (on a channel, or on every channel when blank):
    do-not-contact, consent withdrawn, or an opt-out such as pressing 9 in an automated call."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="contact_blocks"
    )
    kind = models.CharField(_("kind"), max_length=30, choices=BlockKind.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    source = models.CharField(
        _("source"), max_length=10, choices=BlockSource.choices, default=BlockSource.STAFF
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    lifted_at = models.DateTimeField(_("lifted"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("contact block")
        verbose_name_plural = _("contact blocks")


class Reminder(models.Model):
    """A reminder played to a patient by automated call (or sent by SMS once messaging exists)
    (F2.6): take a medicine, come for a re-examination at a time and place, get a refill before
    the dispensed quantity runs out, a physical exam or vaccination. ``text`` is what is said."""

    kind = models.CharField(_("kind"), max_length=20, choices=ReminderKind.choices)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="reminders"
    )
    encounter = models.ForeignKey(
        "patients.Encounter", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    medication = models.ForeignKey(
        "patients.Medication", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(
        _("channel"), max_length=10, choices=Channel.choices, default=Channel.IVR
    )
    due_at = models.DateTimeField(_("remind at"))
    #: The appointment or run-out moment the reminder is about (re-examination time, refill date).
    event_at = models.DateTimeField(_("appointment"), null=True, blank=True)
    place = models.CharField(_("place"), max_length=200, blank=True)
    text = models.TextField(_("text spoken"))
    status = models.CharField(
        _("status"), max_length=20, choices=ReminderStatus.choices, default=ReminderStatus.SCHEDULED
    )
    result = models.CharField(_("result"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)

    class Meta:
        ordering = ["due_at"]
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        indexes = [models.Index(fields=["status", "due_at"])]
