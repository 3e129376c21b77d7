"""Periodic alert jobs (Huey): idempotent, safe on several workers at once."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from careloop.alerts import services


@db_periodic_task(crontab(minute="*"))
def evaluate_responses_job() -> int:
    """Raise the alerts of responses submitted since the last run (F2.5)."""
    return services.evaluate_pending()


@db_periodic_task(crontab(minute="*"))
def escalate_alerts_job() -> int:
    """Escalate alerts nobody acknowledged by their deadline to the department head."""
    return services.escalate_overdue()
