from django.db import models
from django.utils.translation import gettext_lazy as _


class Operator(models.TextChoices):
    GT = "gt", _("greater than")
    GTE = "gte", _("at least")
    LT = "lt", _("less than")
    LTE = "lte", _("at most")
    EQ = "eq", _("equals")
    NE = "ne", _("does not equal")
    IN = "in", _("is one of")
    CONTAINS = "contains", _("contains")


class Severity(models.TextChoices):
    CRITICAL = "critical", _("Critical")
    HIGH = "high", _("High")
    MEDIUM = "medium", _("Medium")


class AlertState(models.TextChoices):
    """open → acknowledged → advised → closed (see services.py)."""

    OPEN = "open", _("Awaiting acknowledgement")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    ADVISED = "advised", _("Advised")
    CLOSED = "closed", _("Closed")


class AdviceChannel(models.TextChoices):
    CALL = "call", _("Phone call")
    SMS = "sms", _("SMS")


#: Severity order for sorting lists: most urgent first.
SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2}
OPEN_STATES = (AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.ADVISED)
