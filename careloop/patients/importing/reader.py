"""Reading xlsx and csv files as rows of cell values, and finding the header row.

Rows are numbered as the spreadsheet shows them (1-based). csv files may be UTF-8 (with or without
BOM), UTF-16 with BOM, or GBK/GB18030 — the encoding is detected, not asked for.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

from careloop.patients.importing import xlsx
from careloop.patients.importing.fields import IDENTIFIERS, IGNORE, guess_field, normalise_header

HEADER_SEARCH_ROWS = 30
XLSX_SUFFIXES = (".xlsx", ".xlsm")
CSV_SUFFIXES = (".csv", ".txt", ".tsv")


class ReadError(Exception):
    """The file itself cannot be read (wrong format, no header row …); the message is for the user."""


Row = tuple[int, list[Any]]


def _xlsx_rows(path: Path) -> Iterator[Row]:
    try:
        yield from xlsx.iter_rows(path)
    except xlsx.XlsxError as exc:
        raise ReadError(_("The file is not a readable Excel workbook (.xlsx).")) from exc


def _decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        # GB18030 is a superset of GBK and GB2312, which is what Chinese Excel saves as "CSV".
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ReadError(_("The file's text encoding is neither UTF-8 nor GBK/GB18030.")) from exc


def _csv_rows(path: Path) -> Iterator[Row]:
    text = _decode(path.read_bytes())
    if "\x00" in text:
        raise ReadError(_("The file is not a text (csv) file."))
    sample = text[:8192]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        for number, values in enumerate(reader, start=1):
            yield number, list(values)
    except csv.Error as exc:
        raise ReadError(_("The csv file is malformed: %(error)s") % {"error": exc}) from exc


def read_rows(path: Path, file_name: str | None = None) -> Iterator[Row]:
    """Every row of the first sheet (xlsx) or of the csv file, with its 1-based row number."""
    name = (file_name or path.name).lower()
    if not path.exists():
        raise ReadError(_("The file does not exist."))
    if name.endswith(".xls"):
        raise ReadError(_("Old Excel files (.xls) are not supported: save the file as .xlsx."))
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic.startswith(b"PK\x03\x04") or name.endswith(XLSX_SUFFIXES):
        return _xlsx_rows(path)
    if magic.startswith(b"\xd0\xcf\x11\xe0"):
        raise ReadError(_("Old Excel files (.xls) are not supported: save the file as .xlsx."))
    return _csv_rows(path)


def cell_text(value: Any) -> str:
    """A cell as stripped text ('' for empty cells); 12345.0 from Excel becomes '12345'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def is_blank(values: list[Any]) -> bool:
    return all(cell_text(v) == "" for v in values)


@dataclass
class Header:
    """The header row: its number, one label per column, and the field each column is mapped to."""

    row: int
    labels: list[str]
    fields: list[str | None] = field(default_factory=list)  # None: not recognised
    normalised: list[str] = field(default_factory=list)
    _texts: frozenset[str] | None = field(default=None, repr=False)

    @property
    def unrecognised(self) -> list[str]:
        return [label for label, f in zip(self.labels, self.fields, strict=True) if f is None]

    @property
    def mapping(self) -> dict[str, str | None]:
        """label → field, as stored in ImportBatch: '' for an ignored column, None for one that
        nobody mapped (the command line ignores it; the web import asks)."""
        return dict(zip(self.labels, self.fields, strict=True))

    def is_repeat(self, values: list[Any]) -> bool:
        """A header line repeated in the middle of the data (page breaks of printed exports):
        at least two cells, and half of the non-empty ones, are header texts."""
        if self._texts is None:
            self._texts = frozenset(self.labels) | (frozenset(self.normalised) - {""})
        matches = 0
        non_empty = 0
        for value in values:
            if value is None:
                continue
            text = value.strip() if isinstance(value, str) else value
            if text == "":
                continue
            non_empty += 1
            if isinstance(text, str) and text in self._texts:
                matches += 1
        return matches >= 2 and matches * 2 >= non_empty


def column_labels(values: list[Any]) -> list[str]:
    """Header texts, made unique ('电话', '电话 (2)') and named after the column letter when empty."""
    from openpyxl.utils import get_column_letter

    labels: list[str] = []
    seen: dict[str, int] = {}
    for index, value in enumerate(values, start=1):
        label = " ".join(cell_text(value).split())
        if not label:
            label = _("Column %(letter)s") % {"letter": get_column_letter(index)}
        if label in seen:
            seen[label] += 1
            label = f"{label} ({seen[label]})"
        else:
            seen[label] = 1
        labels.append(label)
    while labels and not cell_text(values[len(labels) - 1]):
        labels.pop()  # trailing empty header cells carry no column
    return labels


def _recognise(label: str, mapping: dict[str, str]) -> str | None:
    if label in mapping:
        return mapping[label]
    return guess_field(label)


def find_header(rows: Iterator[Row], mapping: dict[str, str] | None = None) -> Header:
    """Consume rows up to and including the header row (title rows above it are skipped)."""
    mapping = mapping or {}
    for number, values in rows:
        if number > HEADER_SEARCH_ROWS:
            break
        if is_blank(values):
            continue
        labels = column_labels(values)
        fields = [_recognise(label, mapping) for label in labels]
        known = sum(1 for f in fields if f not in (None, IGNORE))
        filled = sum(1 for v in values if cell_text(v))
        if known >= 2 or (known == 1 and filled == 1):
            return Header(
                row=number,
                labels=labels,
                fields=fields,
                normalised=[normalise_header(cell_text(v)) for v in values[: len(labels)]],
            )
    raise ReadError(
        _(
            "No header row found in the first %(n)d rows: the file needs a row of column names "
            "such as 姓名, 病案号, 联系电话."
        )
        % {"n": HEADER_SEARCH_ROWS}
    )


def has_identifier(fields: list[str | None]) -> bool:
    return any(f in IDENTIFIERS for f in fields)


def estimate_rows(path: Path, file_name: str | None = None) -> int:
    """A quick upper estimate of the number of rows, to decide between a synchronous and a queued run."""
    name = (file_name or path.name).lower()
    if name.endswith(XLSX_SUFFIXES):
        return xlsx.estimate_rows(path)
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
