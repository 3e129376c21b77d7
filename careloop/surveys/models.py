from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from careloop.surveys.choices import ResponseChannel


class Questionnaire(models.Model):
    """A questionnaire (问卷); its questions live in immutable published versions."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    department = models.ForeignKey(
        "accounts.Department",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="questionnaires",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    is_archived = models.BooleanField(_("archived"), default=False)

    class Meta:
        ordering = ["title"]
        verbose_name = _("questionnaire")
        verbose_name_plural = _("questionnaires")

    def __str__(self) -> str:
        return self.title

    @property
    def current_version(self) -> QuestionnaireVersion | None:
        return self.versions.filter(published_at__isnull=False).order_by("-number").first()


class QuestionnaireVersion(models.Model):
    """One version of a questionnaire's questions. Published versions are never edited.

    ``definition`` is ``{"questions": [...]}``; each question has ``key``, ``type`` (QuestionType),
    ``text``, ``required``, ``options`` ([{"value", "label", "score"}]), ``min``/``max``/``unit``
    for numbers, ``scale`` for ratings and ``show_if`` ({"key", "op", "value"}) for skip logic.
    See careloop/surveys/schema.py.
    """

    questionnaire = models.ForeignKey(
        Questionnaire, on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField(_("version"))
    definition = models.JSONField(_("definition"), default=dict)
    published_at = models.DateTimeField(_("published"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["questionnaire", "-number"]
        verbose_name = _("questionnaire version")
        verbose_name_plural = _("questionnaire versions")
        constraints = [
            models.UniqueConstraint(
                fields=["questionnaire", "number"], name="questionnaire_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.questionnaire} v{self.number}"


class Response(models.Model):
    """A patient's answers to one questionnaire version, from any channel."""

    version = models.ForeignKey(
        QuestionnaireVersion, on_delete=models.PROTECT, related_name="responses"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="responses"
    )
    channel = models.CharField(_("channel"), max_length=20, choices=ResponseChannel.choices)
    answers = models.JSONField(_("answers"), default=dict)
    score = models.DecimalField(_("score"), max_digits=8, decimal_places=2, null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(_("submitted"), auto_now_add=True)

    class Meta:
        ordering = ["-submitted_at"]
        verbose_name = _("response")
        verbose_name_plural = _("responses")
