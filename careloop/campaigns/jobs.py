"""Periodic campaign job (Huey): idempotent, safe on several workers (``pump`` locks the campaign)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from careloop.campaigns import services


@db_periodic_task(crontab(minute="*"))
def pump_campaigns_job() -> int:
    """Hand the next minute's calls of every running automated campaign to the dialler."""
    return services.pump_all()
