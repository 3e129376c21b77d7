"""Periodic reminder jobs (Huey): idempotent, safe on several workers.

* every minute: due reminders get their call scheduled with the dialler
  (``reminders.schedule_due_reminders``); the dialler's own minute job dials them within the
  contact policy;
* every day at 06:05 Asia/Shanghai (22:05 UTC; Huey's crontabs are in UTC): refill reminders for
  the discharge medications of recent discharges (``reminders.generate_refill_reminders``).

Discovered through ``careloop/outreach/tasks.py`` (Huey's consumers import every app's ``tasks``
module; the embedded worker imports ``jobs`` and ``tasks``).
"""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from careloop.outreach import reminders

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="*"))
def reminder_calls_job() -> int:
    """Schedule the calls of due reminders (and give up appointments that have passed)."""
    scheduled = reminders.schedule_due_reminders()
    if scheduled:
        logger.info("reminders: %d calls scheduled", scheduled)
    return scheduled


@db_periodic_task(crontab(hour="22", minute="5"))
def refill_reminders_job() -> int:
    """One refill reminder per discharge medication of the last 60 days' discharges."""
    report = reminders.generate_refill_reminders()
    # Counts only: the reasons name medications, which belong on the patient page, not in logs.
    logger.info(
        "refill reminders: %d created, %d already made, %d without a date",
        report.created,
        report.existing,
        len(report.skipped),
    )
    return report.created
