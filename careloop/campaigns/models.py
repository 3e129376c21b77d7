"""Outbound campaigns (F4.9) and the patients each one calls."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from careloop.campaigns.choices import (
    RETRYABLE,
    CampaignKind,
    CampaignState,
    ListSource,
    TargetState,
    result_label,
)


def default_windows() -> list[dict[str, object]]:
    """Weekdays 09:00–11:30 and 14:00–17:00; the hospital's contact hours still apply on top."""
    days = [1, 2, 3, 4, 5]
    return [
        {"days": days, "from": "09:00", "to": "11:30"},
        {"days": days, "from": "14:00", "to": "17:00"},
    ]


def default_retry_on() -> list[str]:
    return list(RETRYABLE)


class Campaign(models.Model):
    """One outbound campaign: what is said or asked, when and how fast it calls, how it retries.

    ``windows`` are the campaign's calling hours (ISO weekdays, local times, as in the contact
    policy); the hospital's contact policy is checked on top of them before every attempt.
    """

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=20, choices=CampaignKind.choices)
    department = models.ForeignKey(
        "accounts.Department",
        on_delete=models.PROTECT,
        related_name="campaigns",
        verbose_name=_("department"),
    )
    state = models.CharField(
        _("state"), max_length=20, choices=CampaignState.choices, default=CampaignState.DRAFT
    )
    #: Voice notification text with {姓名} {科室} {日期} ... (see ``services.render_message``).
    message = models.TextField(_("message spoken"), blank=True)
    questionnaire = models.ForeignKey(
        "surveys.QuestionnaireVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
        verbose_name=_("questionnaire"),
    )
    windows = models.JSONField(_("calling hours"), default=default_windows)
    concurrency = models.PositiveSmallIntegerField(
        _("calls at once"), default=5, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    calls_per_minute = models.PositiveSmallIntegerField(
        _("new calls per minute"),
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(600)],
    )
    max_attempts = models.PositiveSmallIntegerField(
        _("attempts per patient"),
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
    )
    retry_minutes = models.PositiveIntegerField(
        _("minutes between attempts"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
    )
    retry_on = models.JSONField(_("results that are retried"), default=default_retry_on)
    source = models.CharField(_("list from"), max_length=20, choices=ListSource.choices, blank=True)
    #: The filters the list was built with (ids and dates, for the record).
    source_filters = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        permissions = [("run_campaign", _("Can create, start, pause and cancel campaigns"))]
        indexes = [models.Index(fields=["state", "kind"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_automated(self) -> bool:
        return self.kind in (CampaignKind.NOTIFICATION, CampaignKind.QUESTIONNAIRE)


class CampaignTarget(models.Model):
    """One patient of a campaign (a patient appears once per campaign) and how calling them went.

    ``skip_reason``/``last_result`` are codes (see ``choices.RESULT_LABELS``); ``reason`` is the
    readable text shown to staff. A preview-dialling target is held by one nurse at a time
    (``claimed_by``), taken with a conditional UPDATE.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="targets")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="campaign_targets"
    )
    task = models.ForeignKey(
        "followup.Task",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="campaign_targets",
    )
    state = models.CharField(
        _("state"), max_length=20, choices=TargetState.choices, default=TargetState.PENDING
    )
    skip_reason = models.CharField(_("skip reason"), max_length=30, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_result = models.CharField(_("last result"), max_length=30, blank=True)
    #: Keys pressed / questionnaire answers of the answered call, by question key.
    answers = models.JSONField(_("answers"), default=dict, blank=True)
    contact_attempt = models.ForeignKey(
        "outreach.ContactAttempt",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "id"]
        verbose_name = _("campaign target")
        verbose_name_plural = _("campaign targets")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "patient"], name="campaign_target_unique_patient"
            )
        ]
        indexes = [models.Index(fields=["campaign", "state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} target {self.pk}"

    @property
    def last_result_label(self) -> str:
        return result_label(
            self.skip_reason if self.state == TargetState.SKIPPED else self.last_result
        )
