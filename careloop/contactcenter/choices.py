"""Vocabulary of the contact center."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class PhoneKind(models.TextChoices):
    REGISTERED = "registered", _("SIP account registered at Kamailio")
    FIXED = "fixed", _("Fixed SIP URI")


class Direction(models.TextChoices):
    OUTBOUND = "outbound", _("Outbound (click-to-call)")
    INBOUND = "inbound", _("Inbound (call back)")


class CallState(models.TextChoices):
    DIALING_AGENT = "dialing_agent", _("Ringing your phone")
    RINGING_PATIENT = "ringing_patient", _("Ringing the patient")
    TALKING = "talking", _("Talking")
    ENDED = "ended", _("Ended")


class Leg(models.TextChoices):
    AGENT = "agent", _("Agent")
    PATIENT = "patient", _("Patient")


class RatingStatus(models.TextChoices):
    """Where a call is in the post-call satisfaction rating (F3.3)."""

    NONE = "", _("Not offered")
    REQUESTED = "requested", _("Requested by the nurse")
    SKIPPED = "skipped", _("Hung up without rating")
    OFFERED = "offered", _("Rating in progress")
    RATED = "rated", _("Rated")
    UNRATED = "unrated", _("No rating given")
