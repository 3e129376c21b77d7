"""Huey discovers ``tasks`` modules (``run_huey`` and the embedded worker): the reminder jobs."""

from careloop.outreach import reminder_jobs  # noqa: F401
