"""Vocabulary of outbound contacts."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Purpose(models.TextChoices):
    FOLLOWUP = "followup", _("Follow-up")
    REMINDER = "reminder", _("Reminder")
    CAMPAIGN = "campaign", _("Campaign")
    ALERT = "alert", _("Abnormal result")
    CALL = "call", _("Other call")


class AttemptState(models.TextChoices):
    """``scheduled`` → ``dialing`` → ``answered`` → ``ended``; or ``blocked`` / ``cancelled``."""

    SCHEDULED = "scheduled", _("Scheduled")
    DIALING = "dialing", _("Dialling")
    ANSWERED = "answered", _("Answered")
    ENDED = "ended", _("Ended")
    BLOCKED = "blocked", _("Blocked by the contact policy")
    CANCELLED = "cancelled", pgettext_lazy("contact attempt", "Cancelled")


class BlockKind(models.TextChoices):
    DO_NOT_CONTACT = "do_not_contact", _("Do not contact")
    CONSENT_WITHDRAWN = "consent_withdrawn", _("Consent withdrawn")
    OPT_OUT = "opt_out", _("Opted out")


class BlockSource(models.TextChoices):
    STAFF = "staff", _("Recorded by staff")
    KEYPAD = "keypad", _("Keypad (pressed 9)")
    SMS = "sms", _("SMS reply")


class ReminderKind(models.TextChoices):
    MEDICATION = "medication", _("Medication reminder")
    REEXAM = "reexam", _("Re-examination reminder")
    REFILL = "refill", _("Refill reminder")
    EXAM = "exam", _("Physical exam / vaccination reminder")


class ReminderStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Not delivered")
    CANCELLED = "cancelled", pgettext_lazy("reminder", "Cancelled")
