"""Vocabulary of outbound campaigns."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class CampaignKind(models.TextChoices):
    NOTIFICATION = "notification", _("Voice notification")
    QUESTIONNAIRE = "questionnaire", _("Automated questionnaire")
    PREVIEW = "preview", _("Preview dialling by nurses")


class CampaignState(models.TextChoices):
    """``draft`` → ``running`` ⇄ ``paused`` → ``finished``; ``cancelled`` from any but finished."""

    DRAFT = "draft", pgettext_lazy("campaign", "Draft")
    RUNNING = "running", pgettext_lazy("campaign", "Running")
    PAUSED = "paused", pgettext_lazy("campaign", "Paused")
    FINISHED = "finished", pgettext_lazy("campaign", "Finished")
    CANCELLED = "cancelled", pgettext_lazy("campaign", "Cancelled")


class TargetState(models.TextChoices):
    PENDING = "pending", pgettext_lazy("campaign target", "Pending")
    IN_PROGRESS = "in_progress", pgettext_lazy("campaign target", "In progress")
    DONE = "done", pgettext_lazy("campaign target", "Reached")
    FAILED = "failed", pgettext_lazy("campaign target", "Failed")
    SKIPPED = "skipped", pgettext_lazy("campaign target", "Skipped")


class ListSource(models.TextChoices):
    TASKS = "tasks", _("Follow-up tasks")
    PATIENTS = "patients", _("Patients")


#: Engine dial results that mean the patient was not reached (docs/engine.md, "Dial results").
DIAL_FAILURES = ("busy", "no_answer", "rejected", "unreachable", "failed")

#: Results an attempt may end with, as the report names them.
RESULT_LABELS = {
    "answered": _("Answered"),
    "completed": _("Answered, finished"),
    "hung_up": _("Answered, hung up early"),
    "busy": _("Busy"),
    "no_answer": _("No answer"),
    "rejected": _("Call rejected"),
    "unreachable": _("Unreachable"),
    "failed": _("Call failed"),
    "opted_out": _("Opted out (pressed 9)"),
    "to_nurse": _("Put through to a nurse"),
    "no_consent": _("Did not consent"),
    "wrong_number": _("Wrong number"),
    "refused": _("Refused"),
    "deceased": _("Deceased"),
    "call_back": _("Call back later"),
    "reached": _("Reached"),
    "blocked": _("Blocked by the contact policy"),
    "cancelled": _("Campaign cancelled"),
    "cancelled_elsewhere": _("Call cancelled (step finished or patient blocked)"),
    "skipped_by_nurse": _("Skipped by the nurse"),
    "do_not_contact": _("Do not contact"),
    "consent_withdrawn": _("Consent withdrawn"),
    "no_phone": _("No phone number"),
    "duplicate": _("Already in the list"),
}

#: Results a campaign may retry (its ``retry_on`` is a subset).
RETRYABLE = ("busy", "no_answer", "failed")
RETRY_CHOICES = [(value, RESULT_LABELS[value]) for value in RETRYABLE]


def result_label(code: str) -> str:
    """Readable name of a result or skip reason code (the code itself when unknown)."""
    return str(RESULT_LABELS.get(code, code)) if code else ""
