"""Huey job for large web imports: runs the same import service as the command line."""

from __future__ import annotations

import logging

from django.utils import translation
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from careloop.accounts.models import User
from careloop.patients.choices import ImportStatus
from careloop.patients.importing.staging import expire_pending, run_staged
from careloop.patients.models import ImportBatch

logger = logging.getLogger(__name__)


@db_task()
def run_import(
    batch_id: int, department_id: int | None, user_id: int | None, language: str
) -> None:
    """Import a claimed batch; a batch that has already finished is left alone (idempotent)."""
    batch = ImportBatch.objects.filter(pk=batch_id, status=ImportStatus.RUNNING).first()
    if batch is None or batch.finished_at is not None:
        logger.info("import job: batch %s is not waiting to run", batch_id)
        return
    user = User.objects.filter(pk=user_id).first() if user_id else None
    with translation.override(language):
        run_staged(batch, department_id=department_id, acting_user=user)


@db_periodic_task(crontab(minute="17"))
def expire_pending_imports() -> None:
    """Hourly: uploads nobody finished mapping are failed and their files deleted."""
    expired = expire_pending()
    if expired:
        logger.info("import jobs: %d pending uploads expired", expired)
