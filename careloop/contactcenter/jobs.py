"""Periodic contact-center jobs (Huey): idempotent, safe on several workers."""

from __future__ import annotations

import logging
import subprocess

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from careloop.contactcenter import kamailio

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
