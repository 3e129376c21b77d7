from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from careloop.alerts.choices import AdviceChannel, AlertState, Operator, Severity


class AlertRule(models.Model):
    """Hospital policy: an answer matching ``operator`` ``value`` raises an alert (F2.5).

    ``questionnaire`` empty means every questionnaire having a question ``question_key``.
    ``message`` is data in the hospital's language; ``{question}`` and ``{answer}`` are replaced.
    """

    questionnaire = models.ForeignKey(
        "surveys.Questionnaire",
        verbose_name=_("questionnaire"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rules",
        help_text=_("Empty: every questionnaire with this question key."),
    )
    question_key = models.CharField(_("question key"), max_length=40)
    operator = models.CharField(_("operator"), max_length=10, choices=Operator.choices)
    value = models.JSONField(
        _("value"),
        help_text=_('JSON: a number, "text", true / false, or a list for "is one of".'),
    )
    severity = models.CharField(
        _("severity"), max_length=10, choices=Severity.choices, default=Severity.HIGH
    )
    message = models.CharField(_("message"), max_length=200)
    ack_hours = models.PositiveSmallIntegerField(_("acknowledge within (hours)"), default=4)
    escalation_hours = models.PositiveSmallIntegerField(
        _("escalate after the deadline (hours)"), default=0
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["questionnaire__title", "question_key", "id"]
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")

    def __str__(self) -> str:
        return f"{self.question_key} {self.operator} {self.value}"


class Alert(models.Model):
    """An abnormal answer to be seen by a clinician; tracked until closed.

    Transition timestamps are set once by the services and never edited. ``key`` is
    ``rule:<id>`` or ``question:<key>`` (an option marked abnormal in the questionnaire), unique
    per response so evaluating a response twice raises nothing new.
    """

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="alerts")
    department = models.ForeignKey(
        "accounts.Department",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="alerts",
    )
    response = models.ForeignKey(
        "surveys.Response", on_delete=models.CASCADE, related_name="alerts"
    )
    task = models.ForeignKey(
        "followup.Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    key = models.CharField(max_length=60)
    question_key = models.CharField(_("question key"), max_length=40)
    question_text = models.CharField(_("question"), max_length=300)
    answer_text = models.CharField(_("answer"), max_length=300)
    message = models.CharField(_("message"), max_length=300)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    state = models.CharField(
        _("state"), max_length=15, choices=AlertState.choices, default=AlertState.OPEN
    )
    assigned_doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned doctor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_alerts",
    )
    raised_at = models.DateTimeField(_("raised"), default=timezone.now)
    deadline = models.DateTimeField(_("acknowledge by"))
    escalate_at = models.DateTimeField(_("escalate at"))
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    advised_at = models.DateTimeField(_("advised"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    close_note = models.CharField(_("closing note"), max_length=500, blank=True)
    escalated_at = models.DateTimeField(_("escalated"), null=True, blank=True)
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("escalated to"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="escalated_alerts",
    )

    class Meta:
        ordering = ["-raised_at", "-id"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        permissions = [("advise_alert", _("Can acknowledge, advise on and close alerts"))]
        constraints = [
            models.UniqueConstraint(fields=["response", "key"], name="alert_unique_response_key")
        ]
        indexes = [
            models.Index(fields=["department", "state", "raised_at"]),
            models.Index(fields=["state", "escalated_at", "escalate_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.message}"

    @property
    def is_escalated(self) -> bool:
        return self.escalated_at is not None


class Advice(models.Model):
    """A clinician's advice on an alert, passed back to the patient by a nurse's call or SMS."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="advices")
    text = models.TextField(_("advice"))
    channel = models.CharField(_("advice channel"), max_length=10, choices=AdviceChannel.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(_("advised"), default=timezone.now)
    task = models.ForeignKey(
        "followup.Task",
        verbose_name=_("follow-up task"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="advices",
    )

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("advice")
        verbose_name_plural = _("advice")


class Evaluation(models.Model):
    """Marks a response as evaluated against the alert rules (once), for the job and the rate."""

    response = models.OneToOneField(
        "surveys.Response", on_delete=models.CASCADE, related_name="alert_evaluation"
    )
    department = models.ForeignKey(
        "accounts.Department", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(db_index=True)
    evaluated_at = models.DateTimeField(default=timezone.now)
    alert_count = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("alert evaluation")
        verbose_name_plural = _("alert evaluations")
