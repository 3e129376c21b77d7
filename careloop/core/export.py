"""Export of any list to Excel (F1.3, F7.1).

``export_xlsx`` is deliberately generic: the caller decides the rows (already gated by department),
the columns and the audit record. Values are written as they are displayed: aware datetimes in the
local time zone (Asia/Shanghai), choices through ``get_FOO_display`` when the caller says so.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import Promise
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Spreadsheet programs run text starting with these as a formula (CSV/Excel injection).
_FORMULA_START = ("=", "+", "-", "@")

Accessor = str | Callable[[Any], Any]


@dataclass(frozen=True)
class Column:
    """One exported column: a header and how to get the value from a row.

    ``value`` is an attribute / dict key path (``"department.name"``) or a callable taking the row.
    """

    header: str | Promise
    value: Accessor
    width: int = 16


def _lookup(row: Any, path: str) -> Any:
    value = row
    for part in path.split("."):
        if value is None:
            return None
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
        if callable(value) and not isinstance(value, type):
            value = value()
    return value


def cell_value(value: Any) -> Any:
    """A value openpyxl can store, as the user should read it."""
    if value is None:
        return None
    if isinstance(value, Promise):
        return str(value)
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.replace(tzinfo=None)
    if isinstance(value, bool | int | float | decimal.Decimal | dt.date | dt.time):
        return value
    if isinstance(value, list | tuple | set):
        return ", ".join(str(cell_value(v)) for v in value)
    return str(value)


def _as_column(column: Column | tuple[Any, Accessor]) -> Column:
    return column if isinstance(column, Column) else Column(column[0], column[1])


def write_xlsx(
    rows: Iterable[Any],
    columns: list[Column] | list[tuple[Any, Accessor]],
    stream: Any,
    *,
    title: str = "Sheet1",
) -> int:
    """Write ``rows`` to ``stream`` as an xlsx workbook; returns the number of rows written."""
    cols = [_as_column(c) for c in columns]
    workbook = Workbook(write_only=True)
    # Excel forbids these characters in sheet names and limits them to 31 characters.
    safe_title = re.sub(r"[\\/*?:\[\]]", "_", title)[:31] or "Sheet1"
    sheet = workbook.create_sheet(title=safe_title)
    for index, column in enumerate(cols):
        sheet.column_dimensions[get_column_letter(index + 1)].width = column.width
    bold = Font(bold=True)
    header = []
    for column in cols:
        cell = WriteOnlyCell(sheet, value=str(column.header))
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    count = 0
    for row in rows:
        cells = []
        for column in cols:
            raw = column.value(row) if callable(column.value) else _lookup(row, column.value)
            value = cell_value(raw)
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str) and value.startswith(_FORMULA_START):
                cell.data_type = "s"  # keep '=…' as text, never as a formula
            cells.append(cell)
        sheet.append(cells)
        count += 1
    workbook.save(stream)
    return count


def export_xlsx(
    rows: Iterable[Any],
    columns: list[Column] | list[tuple[Any, Accessor]],
    filename: str,
) -> HttpResponse:
    """An HttpResponse with ``rows`` as an Excel download named ``filename`` (Chinese allowed).

    The response carries ``row_count`` (an attribute) so the caller can audit how much left.
    """
    if not filename.endswith(".xlsx"):
        filename += ".xlsx"
    response = HttpResponse(content_type=XLSX_CONTENT_TYPE)
    ascii_name = filename.encode("ascii", "ignore").decode() or "export.xlsx"
    if ascii_name.startswith("."):
        ascii_name = "export" + ascii_name
    response["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    )
    buffer = io.BytesIO()
    response.row_count = write_xlsx(rows, columns, buffer, title=filename[:-5])  # type: ignore[attr-defined]
    response.content = buffer.getvalue()
    return response


def export_filtered_list(
    request: HttpRequest,
    rows: QuerySet[Any],
    columns: list[Column] | list[tuple[Any, Accessor]],
    *,
    name: str,
    list_url: str,
    too_many: str,
    max_rows: int,
) -> HttpResponse:
    """A filtered list to Excel, audited: refused back to ``list_url`` with ``too_many``
    (``%(count)d`` and ``%(max)d``) when more than ``max_rows`` match, else the download named
    ``<name>-<local time>.xlsx`` and an EXPORT audit event with the row count."""
    from django.contrib import messages
    from django.shortcuts import redirect

    from careloop.audit import services as audit
    from careloop.audit.models import AuditAction

    total = rows.count()
    if total > max_rows:
        messages.error(request, too_many % {"count": total, "max": max_rows})
        return redirect(list_url)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = export_xlsx(rows.iterator(chunk_size=2000), columns, f"{name}-{stamp}")
    audit.record(
        AuditAction.EXPORT,
        user=request.user,  # type: ignore[arg-type]
        detail={"list": name, "rows": response.row_count},  # type: ignore[attr-defined]
        request=request,
    )
    return response
