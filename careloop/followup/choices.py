from django.db import models
from django.utils.translation import gettext_lazy as _


class Trigger(models.TextChoices):
    DISCHARGE = "discharge", _("Discharge")
    SURGERY = "surgery", _("Surgery")
    OUTPATIENT = "outpatient", _("Outpatient visit")
    ENROLMENT = "enrolment", _("Manual enrolment")


class Channel(models.TextChoices):
    PHONE = "phone", _("Nurse phone call")
    IVR = "ivr", _("Automated call")
    SMS = "sms", _("SMS")
    WEB = "web", _("Web questionnaire")


class Assignment(models.TextChoices):
    EVEN = "even", _("Distribute evenly")
    POOL = "pool", _("Claim from pool")


class EnrollmentStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    COMPLETED = "completed", _("Completed")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    LOST = "lost", _("Lost to follow-up")


class TaskStatus(models.TextChoices):
    """The one state model of a follow-up task (see careloop/followup/states.py)."""

    PENDING = "pending", _("Pending")
    DUE = "due", _("Due")
    OVERDUE = "overdue", _("Overdue")
    DONE = "done", _("Done")
    UNREACHED = "unreached", _("Unreached")
    LOST = "lost", _("Lost to follow-up")
    CANCELLED = "cancelled", _("Cancelled")


class Outcome(models.TextChoices):
    REACHED = "reached", _("Reached")
    NO_ANSWER = "no_answer", _("No answer")
    BUSY = "busy", _("Busy")
    WRONG_NUMBER = "wrong_number", _("Wrong number")
    REFUSED = "refused", _("Refused")
    DECEASED = "deceased", _("Deceased")
    CALL_BACK = "call_back", _("Call back later")


class NotificationKind(models.TextChoices):
    OVERDUE = "overdue", _("Overdue task")
    ASSIGNED = "assigned", _("Task assigned")
