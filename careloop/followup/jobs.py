"""Periodic follow-up jobs (Huey). They take no arguments, call one service and are idempotent,
so several workers may run them at once (the services lock or update conditionally)."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from careloop.followup import services

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="*/10"))
def auto_enrol_job() -> int:
    """Enrol new discharges, operations and visits matching the active plans (F2.2)."""
    return services.auto_enrol()


@db_periodic_task(crontab(minute="*"))
def refresh_states_job() -> dict[str, int]:
    """Move tasks with the calendar and send overdue warnings (F2.3)."""
    return services.refresh_states()
