from django.db import models
from django.utils.translation import gettext_lazy as _


class Sex(models.TextChoices):
    MALE = "M", _("Male")
    FEMALE = "F", _("Female")
    UNKNOWN = "U", _("Unknown")


class EncounterKind(models.TextChoices):
    OUTPATIENT = "outpatient", _("Outpatient visit")
    INPATIENT = "inpatient", _("Inpatient stay")
    EMERGENCY = "emergency", _("Emergency visit")


class Relation(models.TextChoices):
    SELF = "self", _("Self")
    SPOUSE = "spouse", _("Spouse")
    CHILD = "child", _("Child")
    PARENT = "parent", _("Parent")
    SIBLING = "sibling", _("Sibling")
    OTHER = "other", _("Other")


class BlockKind(models.TextChoices):
    INBOUND = "inbound", _("Blocked inbound number")
    NEVER_DIAL = "never_dial", _("Never dial")


class ImportStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
