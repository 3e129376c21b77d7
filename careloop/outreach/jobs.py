"""Periodic outreach jobs (Huey): idempotent, safe on several workers.

Every minute: automated follow-up steps that are due get their call scheduled
(``automated.schedule_due_tasks``), then the dialler dials what is due (``dialler.dispatch``).
``dispatch_soon`` runs the dialler again at once when an automated call ends.
"""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from careloop.outreach import (
    automated,
    dialler,
    reminder_jobs,  # noqa: F401  (the reminder jobs register with Huey)
)

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="*"))
def dispatch_job() -> int:
    """Schedule due automated follow-ups, end lost calls, dial what is due."""
    scheduled = automated.schedule_due_tasks()
    dialler.reconcile()
    placed = dialler.dispatch()
    if scheduled or placed:
        logger.info("outreach: %d follow-up calls scheduled, %d calls placed", scheduled, placed)
    return placed


@db_task()
def dispatch_task() -> int:
    return dialler.dispatch()


def dispatch_soon() -> None:
    """Enqueue a dispatch (an automated call ended: a place in the limit is free)."""
    dispatch_task()
