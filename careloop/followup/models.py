from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from careloop.followup.choices import (
    Assignment,
    Channel,
    EnrollmentStatus,
    NotificationKind,
    Outcome,
    TaskStatus,
    Trigger,
)


class Team(models.Model):
    """A follow-up team (随访小组) whose members share a plan's tasks."""

    name = models.CharField(_("name"), max_length=100)
    department = models.ForeignKey(
        "accounts.Department", on_delete=models.PROTECT, related_name="teams"
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="supervised_teams",
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self) -> str:
        return self.name


class Plan(models.Model):
    """A follow-up plan template (随访方案) defined by doctors for a disease or operation.

    ``rules`` decides automatic enrolment: ``{"diagnosis_prefixes": ["I21", "I25"],
    "surgery_codes": ["36.06"], "min_age": 18, "max_age": null}``; the plan's department
    always applies. Empty rules enrol every matching encounter of the department.
    """

    name = models.CharField(_("name"), max_length=100)
    department = models.ForeignKey(
        "accounts.Department", on_delete=models.PROTECT, related_name="plans"
    )
    trigger = models.CharField(
        _("trigger"), max_length=20, choices=Trigger.choices, default=Trigger.DISCHARGE
    )
    rules = models.JSONField(_("enrolment rules"), default=dict, blank=True)
    auto_enrol = models.BooleanField(_("enrol automatically"), default=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="plans"
    )
    assignment = models.CharField(
        _("assignment"), max_length=10, choices=Assignment.choices, default=Assignment.EVEN
    )
    script = models.TextField(_("script"), blank=True)
    max_attempts = models.PositiveSmallIntegerField(_("attempts per step"), default=3)
    retry_interval_hours = models.PositiveSmallIntegerField(_("hours between attempts"), default=24)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["department", "name"]
        verbose_name = _("follow-up plan")
        verbose_name_plural = _("follow-up plans")
        permissions = [("view_figures", _("Can view follow-up figures"))]

    def __str__(self) -> str:
        return self.name


class PlanStep(models.Model):
    """One step of a plan: a contact on day N after the anchor, within a tolerance window."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField(_("order"))
    title = models.CharField(_("title"), max_length=100)
    day_offset = models.PositiveIntegerField(_("target day"))
    window_before = models.PositiveSmallIntegerField(_("days early allowed"), default=1)
    window_after = models.PositiveSmallIntegerField(_("days late allowed"), default=3)
    channel = models.CharField(
        _("channel"), max_length=10, choices=Channel.choices, default=Channel.PHONE
    )
    questionnaire = models.ForeignKey(
        "surveys.Questionnaire",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="plan_steps",
    )
    script = models.TextField(_("script"), blank=True)

    class Meta:
        ordering = ["plan", "order"]
        verbose_name = _("plan step")
        verbose_name_plural = _("plan steps")
        constraints = [
            models.UniqueConstraint(fields=["plan", "order"], name="plan_step_unique_order")
        ]

    def __str__(self) -> str:
        return self.title


class Enrollment(models.Model):
    """A patient on a plan, anchored on a date (discharge, surgery, visit or enrolment)."""

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="enrollments")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="enrollments"
    )
    encounter = models.ForeignKey(
        "patients.Encounter",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="enrollments",
    )
    anchor_date = models.DateField(_("anchor date"))
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=EnrollmentStatus.choices,
        default=EnrollmentStatus.ACTIVE,
    )
    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set by the services from their clock (``now``), so history can be recorded as it happened.
    enrolled_at = models.DateTimeField(_("enrolled"), default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        ordering = ["-enrolled_at"]
        verbose_name = _("enrolment")
        verbose_name_plural = _("enrolments")
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "encounter"],
                condition=models.Q(encounter__isnull=False),
                name="enrollment_unique_encounter",
            )
        ]


class Task(models.Model):
    """A follow-up contact due for one step of one enrolment. ``status`` is the single state."""

    # Indexes: a million tasks are inserted in bulk, so single-column indexes already covered by a
    # composite one (enrollment by task_unique_step, department and assignee by theirs, status by
    # status+deadline) are left out.
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.CASCADE, related_name="tasks", db_index=False
    )
    step = models.ForeignKey(PlanStep, on_delete=models.PROTECT, related_name="tasks")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="followup_tasks"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tasks")
    department = models.ForeignKey(
        "accounts.Department",
        on_delete=models.PROTECT,
        related_name="followup_tasks",
        db_index=False,
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="followup_tasks",
        db_index=False,
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=TaskStatus.choices,
        default=TaskStatus.PENDING,
    )
    target_date = models.DateField(_("target date"))
    window_start = models.DateField(_("window opens"))
    deadline = models.DateField(_("deadline"))
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    outcome = models.CharField(
        _("last outcome"), max_length=20, choices=Outcome.choices, blank=True
    )
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    overdue_notified_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["deadline", "id"]
        verbose_name = _("follow-up task")
        verbose_name_plural = _("follow-up tasks")
        permissions = [
            ("work_task", _("Can work follow-up tasks and record outcomes")),
            ("assign_task", _("Can assign and reassign follow-up tasks")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="task_unique_step")
        ]
        indexes = [
            models.Index(fields=["assignee", "status", "deadline"]),
            models.Index(fields=["department", "status", "deadline"]),
            # refresh_states runs every minute over every open task, set-based: overdue by
            # deadline, due by window start, and the overdue tasks not yet warned.
            models.Index(fields=["status", "deadline"]),
            models.Index(fields=["status", "window_start"]),
            models.Index(fields=["status", "overdue_notified_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.plan} / {self.step}"


class FollowUpRecord(models.Model):
    """One contact attempt on a task and its outcome, with the questionnaire response if reached."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="records")
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    note = models.TextField(_("note"), blank=True)
    callback_at = models.DateTimeField(_("call back at"), null=True, blank=True)
    response = models.OneToOneField(
        "surveys.Response",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="followup_record",
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-recorded_at"]
        verbose_name = _("follow-up record")
        verbose_name_plural = _("follow-up records")


class Notification(models.Model):
    """An in-app notice to a member of staff, e.g. an overdue-task warning."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(_("kind"), max_length=30, choices=NotificationKind.choices)
    text = models.CharField(_("text"), max_length=300)
    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "read_at"])]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
