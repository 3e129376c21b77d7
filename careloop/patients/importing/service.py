"""The patient import service (F1.3), used by ``careloop import patients`` and the web import.

Every data row ends up created, updated, unchanged or rejected with its spreadsheet row number and a
reason; blank lines and repeated header lines are skipped and not counted as data. Rows are written in
chunks, each in its own transaction; when a chunk hits a database conflict it is retried row by row,
so one bad row never loses the good ones. Re-importing a file changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import DataError, IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from careloop.accounts.models import Department, User
from careloop.accounts.queries import department_ids
from careloop.audit.models import AuditAction
from careloop.audit.services import record
from careloop.core.formats import mask_id_number, mask_phone
from careloop.patients.choices import ImportStatus
from careloop.patients.importing.fields import FIELDS_BY_KEY, IGNORE, guess_field
from careloop.patients.importing.reader import (
    Header,
    ReadError,
    Row,
    cell_text,
    find_header,
    has_identifier,
    is_blank,
    read_rows,
)
from careloop.patients.importing.rows import (
    CleanRow,
    Columns,
    Departments,
    Doctors,
    RowCleaner,
    RowRejected,
)
from careloop.patients.importing.writer import ChunkResult, ChunkWriter
from careloop.patients.models import ImportBatch

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1000
SAMPLE_ROWS = 3
REMEMBERED_BATCHES = 200


@dataclass
class ImportOutcome:
    """What an import did. ``rejected`` holds ``{"row": n, "reason": "…"}`` in row order."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    header_row: int = 0
    blank_rows: int = 0
    repeated_headers: int = 0
    mapping: dict[str, str | None] = field(default_factory=dict)
    batch: ImportBatch | None = None
    dry_run: bool = False

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged + len(self.rejected)

    @property
    def ignored_columns(self) -> list[str]:
        return [label for label, key in self.mapping.items() if not key]

    def as_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }


# ------------------------------------------------------------------ mapping


def validate_mapping(mapping: dict[str, Any]) -> dict[str, str]:
    """A user-given ``{"header": "field"}``; raises ValueError naming an unknown field."""
    cleaned: dict[str, str] = {}
    for header, key in mapping.items():
        key = key or IGNORE
        if key != IGNORE and key not in FIELDS_BY_KEY:
            raise ValueError(
                _("Unknown field “%(field)s” for column “%(column)s”; known fields: %(fields)s")
                % {"field": key, "column": header, "fields": ", ".join(FIELDS_BY_KEY)}
            )
        cleaned[str(header).strip()] = key
    return cleaned


def remembered_mapping(labels: list[str]) -> dict[str, str | None] | None:
    """The mapping of the latest finished import whose file had exactly these column headers."""
    wanted = set(labels)
    recent = (
        ImportBatch.objects.filter(status=ImportStatus.DONE)
        .exclude(column_mapping={})
        .order_by("-started_at", "-pk")
        .values_list("column_mapping", flat=True)[:REMEMBERED_BATCHES]
    )
    for mapping in recent:
        if isinstance(mapping, dict) and set(mapping) == wanted:
            return mapping
    return None


def resolve_fields(labels: list[str], explicit: dict[str, str] | None = None) -> list[str | None]:
    """Field per column: given mapping, else the remembered one for these headers, else synonyms.

    ``None`` marks a column nobody has mapped yet (ignored by the command line, asked in the UI).
    """
    explicit = explicit or {}
    remembered = remembered_mapping(labels) or {}
    fields: list[str | None] = []
    for label in labels:
        if label in explicit:
            fields.append(explicit[label])
        elif remembered.get(label) is not None:
            fields.append(remembered[label])
        else:
            fields.append(guess_field(label))
    return fields


@dataclass
class Column:
    label: str
    field: str | None
    samples: list[str]


@dataclass
class FileInfo:
    """The header row and a few sample values per column, for the mapping step."""

    header_row: int
    columns: list[Column]

    @property
    def mapping(self) -> dict[str, str]:
        return {c.label: c.field or IGNORE for c in self.columns}

    @property
    def needs_mapping(self) -> bool:
        return any(c.field is None for c in self.columns) or not has_identifier(
            [c.field for c in self.columns]
        )


def _sample(value: Any) -> str:
    text = cell_text(value)
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) >= 17 and len(text) <= 20:
        return mask_id_number(text)
    if (
        7 <= len(digits) <= 13
        and len(text) <= 20
        and not any("\u4e00" <= c <= "\u9fff" for c in text)
    ):
        try:
            from careloop.core.formats import normalize_phone

            return mask_phone(normalize_phone(text))
        except ValueError:
            pass
    return text[:40]


def inspect_file(path: Path, *, file_name: str, mapping: dict[str, str] | None = None) -> FileInfo:
    """Find the header row and the proposed mapping; raises ReadError for an unreadable file."""
    rows = read_rows(path, file_name)
    header = find_header(rows, mapping)
    fields = resolve_fields(header.labels, mapping)
    samples: list[list[str]] = [[] for _ in header.labels]
    header.fields = fields
    for seen, (_number, values) in enumerate(rows):
        if seen > 200 or all(len(s) >= SAMPLE_ROWS for s in samples):
            break
        if is_blank(values) or header.is_repeat(values):
            continue
        for index, value in enumerate(values[: len(samples)]):
            if cell_text(value) and len(samples[index]) < SAMPLE_ROWS:
                samples[index].append(_sample(value))
    return FileInfo(
        header_row=header.row,
        columns=[
            Column(label=label, field=key, samples=sample)
            for label, key, sample in zip(header.labels, fields, samples, strict=True)
        ],
    )


# ------------------------------------------------------------------ import


class _Rollback(Exception):
    pass


def import_file(
    path: Path,
    *,
    file_name: str,
    acting_user: User | None,
    mapping: dict[str, str] | None = None,
    default_department: Department | None = None,
    dry_run: bool = False,
    batch: ImportBatch | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[ImportOutcome], None] | None = None,
) -> ImportOutcome:
    """Import patients, encounters, contacts and operations from an xlsx or csv file.

    Records an ImportBatch (unless ``dry_run``) and an audit event with the counts; raises ReadError
    when the file itself cannot be read, after marking the batch failed. ``acting_user`` bound to
    departments may only import into them (the command line runs hospital-wide with ``None``).
    """
    outcome = ImportOutcome(dry_run=dry_run)
    if not dry_run:
        if batch is None:
            batch = ImportBatch.objects.create(
                file_name=file_name[:200], created_by=acting_user, status=ImportStatus.RUNNING
            )
        else:
            batch.status = ImportStatus.RUNNING
            batch.save(update_fields=["status"])
        outcome.batch = batch
    try:
        if dry_run:
            try:
                with transaction.atomic():
                    _run(path, file_name, acting_user, mapping, default_department, chunk_size,
                         outcome, progress)  # fmt: skip
                    raise _Rollback
            except _Rollback:
                pass
        else:
            _run(path, file_name, acting_user, mapping, default_department, chunk_size,
                 outcome, progress)  # fmt: skip
    except ReadError as exc:
        logger.info("import batch %s: file not readable", batch.pk if batch else "-")
        _fail(batch, acting_user, outcome, str(exc))
        raise
    except Exception as exc:
        # The class only: database errors can quote stored values, which must not reach the log.
        logger.error(
            "import batch %s: stopped by %s", batch.pk if batch else "-", type(exc).__name__
        )
        _fail(batch, acting_user, outcome, _("The import stopped because of an unexpected error."))
        raise
    outcome.rejected.sort(key=lambda r: r["row"])
    if batch is not None:
        batch.column_mapping = outcome.mapping
        batch.created, batch.updated = outcome.created, outcome.updated
        batch.unchanged, batch.rejected = outcome.unchanged, outcome.rejected
        batch.status = ImportStatus.DONE
        batch.finished_at = timezone.now()
        batch.save()
        _audit(batch, acting_user, outcome)
        if outcome.created or outcome.updated:
            transaction.on_commit(_enrol_new_discharges)
    logger.info(
        "import batch %s: %d rows, %d created, %d updated, %d unchanged, %d rejected%s",
        batch.pk if batch else "-",
        outcome.rows,
        outcome.created,
        outcome.updated,
        outcome.unchanged,
        len(outcome.rejected),
        " (dry run)" if dry_run else "",
    )
    return outcome


def _run(
    path: Path,
    file_name: str,
    acting_user: User | None,
    mapping: dict[str, str] | None,
    default_department: Department | None,
    chunk_size: int,
    outcome: ImportOutcome,
    progress: Callable[[ImportOutcome], None] | None,
) -> None:
    rows: Iterator[Row] = read_rows(path, file_name)
    header: Header = find_header(rows, mapping)
    header.fields = resolve_fields(header.labels, mapping)
    outcome.header_row = header.row
    outcome.mapping = header.mapping
    if not has_identifier(header.fields):
        raise ReadError(
            _(
                "The file has no column for the medical record number (病案号), the visit card "
                "number (就诊卡号) or the ID-card number (身份证号), so patients cannot be identified."
            )
        )
    allowed = department_ids(acting_user) if acting_user is not None else None
    if (
        allowed is not None
        and default_department is not None
        and default_department.pk not in allowed
    ):
        raise ReadError(_("You may not import into the chosen default department."))
    cleaner = RowCleaner(
        Columns.from_header(header.labels, header.fields),
        departments=Departments(),
        doctors=Doctors(),
        default_department=default_department,
    )
    chunk: list[CleanRow] = []
    for number, values in rows:
        if is_blank(values):
            outcome.blank_rows += 1
            continue
        if header.is_repeat(values):
            outcome.repeated_headers += 1
            continue
        try:
            chunk.append(cleaner.clean(number, values))
        except RowRejected as rejected:
            outcome.rejected.append({"row": number, "reason": rejected.reason})
            continue
        if len(chunk) >= chunk_size:
            _write(chunk, allowed, outcome)
            chunk = []
            if progress is not None:
                progress(outcome)
    if chunk:
        _write(chunk, allowed, outcome)
        if progress is not None:
            progress(outcome)


def _write(chunk: list[CleanRow], allowed: set[int] | None, outcome: ImportOutcome) -> None:
    result = _write_chunk(chunk, allowed)
    outcome.created += result.created
    outcome.updated += result.updated
    outcome.unchanged += result.unchanged
    outcome.rejected += [{"row": row, "reason": reason} for row, reason in result.rejected]


def _write_chunk(chunk: list[CleanRow], allowed: set[int] | None) -> ChunkResult:
    try:
        with transaction.atomic():
            return ChunkWriter(chunk, allowed_departments=allowed).run()
    except (IntegrityError, DataError):
        if len(chunk) == 1:
            logger.warning("import: row %d conflicts with stored data", chunk[0].row)
            return ChunkResult(
                rejected=[
                    (chunk[0].row, _("could not be saved: it conflicts with a stored record"))
                ]
            )
        logger.warning("import: chunk of %d rows hit a conflict; retrying row by row", len(chunk))
        result = ChunkResult()
        for row in chunk:
            result.add(_write_chunk([row], allowed))
        return result


def _fail(
    batch: ImportBatch | None, acting_user: User | None, outcome: ImportOutcome, error: str
) -> None:
    """Record a failed import; rows written before the failure stay written and are counted."""
    if batch is None:
        return
    batch.status = ImportStatus.FAILED
    batch.error = error
    batch.created, batch.updated = outcome.created, outcome.updated
    batch.unchanged, batch.rejected = (
        outcome.unchanged,
        sorted(outcome.rejected, key=lambda r: r["row"]),
    )
    batch.finished_at = timezone.now()
    batch.save()
    _audit(batch, acting_user, outcome)


def _audit(batch: ImportBatch, acting_user: User | None, outcome: ImportOutcome) -> None:
    record(
        AuditAction.IMPORT,
        user=acting_user,
        obj=batch,
        detail={
            "batch": batch.pk,
            "status": batch.status,
            "created": outcome.created,
            "updated": outcome.updated,
            "unchanged": outcome.unchanged,
            "rejected": len(outcome.rejected),
        },
    )


def _enrol_new_discharges() -> None:
    """Enrol newly imported discharges in their follow-up plans, when the follow-up app offers it."""
    try:
        from careloop.followup.services import auto_enrol
    except ImportError:
        return
    try:
        enrolled = auto_enrol()
    except Exception as exc:
        logger.error("import: automatic follow-up enrolment failed (%s)", type(exc).__name__)
        return
    logger.info("import: %s enrolments after import", enrolled)
