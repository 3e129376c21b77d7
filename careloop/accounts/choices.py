from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    NURSE = "nurse", _("Follow-up nurse / agent")
    SUPERVISOR = "supervisor", _("Supervisor")
    DOCTOR = "doctor", _("Doctor")
    HANDLER = "handler", _("Department handler")
    LEADER = "leader", _("Hospital leader")
    ADMIN = "admin", _("Administrator")


class DepartmentKind(models.TextChoices):
    CLINICAL = "clinical", _("Clinical")
    FOLLOWUP = "followup", _("Follow-up center")
    ADMINISTRATIVE = "administrative", _("Administrative")
