"""``careloop import patients FILE``: import patients from an xlsx or csv file (F1.3).

Exit code 0 when the file was processed (even with rejected rows), 2 when it cannot be read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from careloop.accounts.models import Department
from careloop.patients.importing import ReadError, import_file, validate_mapping
from careloop.patients.importing.service import ImportOutcome


class Command(BaseCommand):
    help = "Import patients, encounters and family contacts from an xlsx or csv file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", help="the .xlsx or .csv file")
        parser.add_argument(
            "--json", action="store_true", help="print one JSON object with the counts"
        )
        parser.add_argument(
            "--mapping",
            metavar="JSON",
            help='column headers to fields, e.g. \'{"手机": "phone", "备注": ""}\' '
            '("" ignores a column), or the path of a file holding that JSON',
        )
        parser.add_argument(
            "--department",
            metavar="CODE",
            help="department (code or name) of encounters whose row names none",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="check the file and report, save nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        mapping = self._mapping(options["mapping"])
        department = self._department(options["department"])
        try:
            outcome = import_file(
                path,
                file_name=path.name,
                acting_user=None,
                mapping=mapping,
                default_department=department,
                dry_run=options["dry_run"],
            )
        except ReadError as exc:
            raise CommandError(
                _("%(file)s: %(error)s") % {"file": path.name, "error": exc}, returncode=2
            ) from exc
        if options["json"]:
            self.stdout.write(json.dumps(outcome.as_json(), ensure_ascii=False))
        else:
            self._summary(path, outcome)

    def _mapping(self, raw: str | None) -> dict[str, str] | None:
        if not raw:
            return None
        text = raw
        if not raw.lstrip().startswith("{"):
            try:
                text = Path(raw).read_text(encoding="utf-8-sig")
            except OSError as exc:
                raise CommandError(
                    _("--mapping: not JSON and not a readable file: %(error)s") % {"error": exc},
                    returncode=2,
                ) from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(
                _("--mapping: invalid JSON: %(error)s") % {"error": exc}, returncode=2
            ) from exc
        if not isinstance(data, dict):
            raise CommandError(
                _('--mapping must be a JSON object {"header": "field"}'), returncode=2
            )
        try:
            return validate_mapping(data)
        except ValueError as exc:
            raise CommandError(f"--mapping: {exc}", returncode=2) from exc

    def _department(self, value: str | None) -> Department | None:
        if not value:
            return None
        department = (
            Department.objects.filter(code__iexact=value.strip()).first()
            or Department.objects.filter(name=value.strip()).first()
        )
        if department is None:
            raise CommandError(
                _("--department: no department with the code or name “%(value)s”")
                % {"value": value},
                returncode=2,
            )
        return department

    def _summary(self, path: Path, outcome: ImportOutcome) -> None:
        write = self.stdout.write
        if outcome.dry_run:
            write(_("Dry run: nothing was saved."))
        write(
            _("%(file)s: header on row %(row)d, %(rows)d data rows")
            % {"file": path.name, "row": outcome.header_row, "rows": outcome.rows}
        )
        width = 12
        for label, count in (
            (_("created"), outcome.created),
            (_("updated"), outcome.updated),
            (_("unchanged"), outcome.unchanged),
            (_("rejected"), len(outcome.rejected)),
        ):
            write(f"  {label:<{width}} {count:>8}")
        if outcome.blank_rows or outcome.repeated_headers:
            write(
                _("Skipped, not counted: %(blank)d blank lines, %(headers)d repeated header lines")
                % {"blank": outcome.blank_rows, "headers": outcome.repeated_headers}
            )
        if outcome.ignored_columns:
            write(
                _("Columns not imported: %(columns)s")
                % {"columns": ", ".join(outcome.ignored_columns)}
            )
        if outcome.rejected:
            write(_("Rejected rows:"))
            for item in outcome.rejected:
                write(
                    _("  row %(row)d: %(reason)s") % {"row": item["row"], "reason": item["reason"]}
                )
        if outcome.batch is not None:
            write(_("Import #%(id)d recorded.") % {"id": outcome.batch.pk})
