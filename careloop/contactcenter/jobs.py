"""Periodic contact-center jobs (Huey): idempotent, safe on several workers."""

from __future__ import annotations

import logging
import subprocess

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from careloop.contactcenter import kamailio, services

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="*"))
def refresh_presence_job() -> int:
    """Agents' registration state from Kamailio's location table (when CareLoop runs Kamailio)."""
    config = kamailio.KamailioSettings()
    if not config.ctl_socket.exists():
        return 0
    try:
        return kamailio.refresh_presence(config)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("kamailio presence not read: %s", type(exc).__name__)
        return 0


@db_periodic_task(crontab(minute="*"))
def reconcile_calls_job() -> int:
    """End calls whose end the engine's events never reported (engine restart, lost webhook)."""
    return services.reconcile_calls()
