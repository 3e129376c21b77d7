from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from careloop.accounts.choices import DepartmentKind, Role


class Department(models.Model):
    """A hospital department (科室); patient data is scoped by it."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(
        _("kind"), max_length=20, choices=DepartmentKind.choices, default=DepartmentKind.CLINICAL
    )
    head = models.ForeignKey(
        "accounts.User",
        verbose_name=_("department head"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("department")
        verbose_name_plural = _("departments")

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A member of staff. The role decides what they may do, the departments what they may see."""

    display_name = models.CharField(_("display name"), max_length=50, blank=True)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.NURSE)
    departments = models.ManyToManyField(
        Department, verbose_name=_("departments"), blank=True, related_name="staff"
    )
    all_departments = models.BooleanField(
        _("sees all departments"),
        default=False,
        help_text=_(
            "Hospital-wide access, e.g. for leaders, administrators and the follow-up center."
        ),
    )
    staff_code = models.CharField(_("staff code"), max_length=32, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    failed_logins = models.PositiveIntegerField(_("failed logins"), default=0)
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def is_read_only(self) -> bool:
        return self.role == Role.LEADER
