"""The web import: an uploaded file is staged, its columns mapped, then imported now or queued.

The staged file lives under ``MEDIA_ROOT/imports/<batch id>/`` only until its import has run.
Small files are imported during the request; larger ones by a Huey job (``patients.jobs``)
running the same service.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from careloop.accounts.models import Department, User
from careloop.audit.models import AuditAction
from careloop.audit.services import record
from careloop.patients.choices import ImportStatus
from careloop.patients.importing.reader import ReadError, estimate_rows
from careloop.patients.importing.service import FileInfo, ImportOutcome, import_file, inspect_file
from careloop.patients.models import ImportBatch

logger = logging.getLogger(__name__)

# Files with more rows than this are imported by the worker, not during the request.
SYNC_ROW_LIMIT = 3000
PENDING_LIFETIME = dt.timedelta(days=1)
ALLOWED_SUFFIXES = (".xlsx", ".xlsm", ".csv", ".txt", ".tsv")


def _directory(batch: ImportBatch) -> Path:
    return Path(settings.MEDIA_ROOT) / "imports" / str(batch.pk)


def staged_path(batch: ImportBatch) -> Path:
    suffix = Path(batch.file_name).suffix.lower()
    return _directory(batch) / f"source{suffix if suffix in ALLOWED_SUFFIXES else '.bin'}"


def discard_staged(batch: ImportBatch) -> None:
    shutil.rmtree(_directory(batch), ignore_errors=True)


def stage_upload(upload: UploadedFile, *, acting_user: User) -> ImportBatch:
    """Record a pending ImportBatch and keep the uploaded file for the mapping step."""
    batch = ImportBatch.objects.create(
        file_name=Path(upload.name or "upload").name[:200],
        created_by=acting_user,
        status=ImportStatus.PENDING,
    )
    path = staged_path(batch)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
    return batch


def receive(
    upload: UploadedFile,
    *,
    default_department: Department | None,
    acting_user: User,
    review: bool = False,
) -> ImportBatch:
    """Stage an upload; import it at once when every column is recognised (or was mapped before
    for files with the same headers) unless ``review`` asks to see the mapping, else leave it
    pending for the mapping step.

    Raises ReadError (after recording the failed batch) when the file cannot be read.
    """
    batch = stage_upload(upload, acting_user=acting_user)
    info = inspect_staged(batch)
    if not review and not info.needs_mapping:
        start(
            batch,
            mapping=info.mapping,
            default_department=default_department,
            acting_user=acting_user,
        )
        batch.refresh_from_db()
    return batch


def expire_pending(*, now: dt.datetime | None = None) -> int:
    """Fail uploads left at the mapping step for a day and delete their files (patient data is not
    kept on disk longer than needed). Returns how many were expired."""
    cutoff = (now or timezone.now()) - PENDING_LIFETIME
    expired = 0
    for batch in ImportBatch.objects.filter(status=ImportStatus.PENDING, started_at__lt=cutoff):
        fail(batch, _("The columns were never mapped; the uploaded file was deleted."))
        expired += 1
    return expired


def inspect_staged(batch: ImportBatch) -> FileInfo:
    """Header and samples of a staged file; marks the batch failed when the file is unreadable."""
    try:
        return inspect_file(staged_path(batch), file_name=batch.file_name)
    except ReadError as exc:
        fail(batch, str(exc))
        raise


def fail(batch: ImportBatch, error: str) -> None:
    batch.status = ImportStatus.FAILED
    batch.error = error
    batch.finished_at = timezone.now()
    batch.save(update_fields=["status", "error", "finished_at"])
    discard_staged(batch)
    record(
        AuditAction.IMPORT,
        user=batch.created_by,
        obj=batch,
        detail={"batch": batch.pk, "status": batch.status, "created": 0, "updated": 0,
                "unchanged": 0, "rejected": 0},
    )  # fmt: skip


def start(
    batch: ImportBatch,
    *,
    mapping: dict[str, str],
    default_department: Department | None,
    acting_user: User,
) -> bool:
    """Claim a pending batch and import it now, or queue it when the file is large.

    Returns False when the batch was no longer pending (a second submit of the same form).
    """
    claimed = ImportBatch.objects.filter(pk=batch.pk, status=ImportStatus.PENDING).update(
        status=ImportStatus.RUNNING, column_mapping=mapping
    )
    if not claimed:
        return False
    batch.refresh_from_db()
    department_id = default_department.pk if default_department else None
    if estimate_rows(staged_path(batch), batch.file_name) > SYNC_ROW_LIMIT:
        from careloop.patients.jobs import run_import

        language = translation.get_language() or settings.LANGUAGE_CODE
        transaction.on_commit(lambda: run_import(batch.pk, department_id, acting_user.pk, language))
    else:
        run_staged(batch, department_id=department_id, acting_user=acting_user)
    return True


def run_staged(batch: ImportBatch, *, department_id: int | None, acting_user: User | None) -> None:
    """Import a claimed batch's staged file with the mapping stored on the batch."""
    department = Department.objects.filter(pk=department_id).first() if department_id else None
    mapping = {k: v for k, v in batch.column_mapping.items() if v is not None}

    def progress(outcome: ImportOutcome) -> None:
        """Counts so far, for the report page that polls while the import runs."""
        ImportBatch.objects.filter(pk=batch.pk).update(
            created=outcome.created, updated=outcome.updated, unchanged=outcome.unchanged
        )

    try:
        import_file(
            staged_path(batch),
            file_name=batch.file_name,
            acting_user=acting_user,
            mapping=mapping,
            default_department=department,
            batch=batch,
            progress=progress,
        )
    except ReadError:
        pass  # recorded on the batch by the service
    finally:
        discard_staged(batch)
