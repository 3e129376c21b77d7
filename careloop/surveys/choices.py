from django.db import models
from django.utils.translation import gettext_lazy as _


class QuestionType(models.TextChoices):
    SINGLE = "single", _("Single choice")
    MULTIPLE = "multiple", _("Multiple choice")
    NUMBER = "number", _("Number")
    TEXT = "text", _("Text")
    DATE = "date", _("Date")
    RATING = "rating", _("Rating scale")
    YES_NO = "yes_no", _("Yes / no")


class ResponseChannel(models.TextChoices):
    AGENT = "agent", _("Read by an agent")
    IVR = "ivr", _("Automated call (keypad)")
    SMS = "sms", _("SMS reply")
    WEB = "web", _("Web page")
