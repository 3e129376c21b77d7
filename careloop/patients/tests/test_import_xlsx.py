"""The streaming xlsx reader of the patient import, on workbooks as Excel and openpyxl write them."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest

from careloop.patients.importing import xlsx
from careloop.patients.importing.reader import ReadError, read_rows

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
REL_NS = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def test_workbook_saved_by_openpyxl_with_shared_strings_and_date_formats(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["姓名", "出院日期", "入院日期", "床号", "费用", "已随访"])
    sheet.append(["张三", dt.datetime(2024, 3, 5, 14, 30), 45352, 12, 3.5, True])
    sheet["C2"].number_format = 'yyyy"年"m"月"d"日"'
    sheet.append(["李四", None, "2024-03-01"])
    sheet["A5"] = "王五"  # row 4 left empty
    path = tmp_path / "saved.xlsx"
    workbook.save(path)

    rows = list(xlsx.iter_rows(path))

    assert rows == [
        (1, ["姓名", "出院日期", "入院日期", "床号", "费用", "已随访"]),
        (2, ["张三", dt.datetime(2024, 3, 5, 14, 30), dt.datetime(2024, 3, 1), 12, 3.5, True]),
        (3, ["李四", None, "2024-03-01"]),
        (4, []),
        (5, ["王五"]),
    ]


def _hand_made(path: Path, sheet_xml: str, *, shared: str = "", styles: str = "", date1904=False):
    """A minimal workbook as other programs write it (prefixes, rich text, phonetic guides)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook {NS} {REL_NS}><workbookPr date1904="{int(date1904)}"/>'
            '<sheets><sheet name="名单" sheetId="1" r:id="rId7"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId7" Type="{RELS}/worksheet" Target="worksheets/data.xml"/>'
            f'<Relationship Id="rId8" Type="{RELS}/sharedStrings" Target="strings.xml"/>'
            f'<Relationship Id="rId9" Type="{RELS}/styles" Target="styles.xml"/>'
            "</Relationships>",
        )
        archive.writestr("xl/worksheets/data.xml", sheet_xml)
        if shared:
            archive.writestr("xl/strings.xml", shared)
        if styles:
            archive.writestr("xl/styles.xml", styles)
    return path


def test_rich_text_phonetic_guides_chinese_date_formats_and_missing_references(tmp_path):
    shared = (
        f"<sst {NS}>"
        "<si><t>姓名</t></si>"
        "<si><r><t>张</t></r><r><rPr><b/></rPr><t>三</t></r><rPh sb='0' eb='1'><t>ちょう</t></rPh></si>"
        "</sst>"
    )
    styles = (
        f'<styleSheet {NS}><numFmts count="1"><numFmt numFmtId="176" formatCode="0.00"/></numFmts>'
        '<cellXfs count="3"><xf numFmtId="0"/><xf numFmtId="31"/><xf numFmtId="176"/></cellXfs>'
        "</styleSheet>"
    )
    sheet = (
        '<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<x:sheetData>"
        '<x:row><x:c t="s"><x:v>0</x:v></x:c><x:c t="inlineStr"><x:is><x:t>出院日期</x:t></x:is></x:c></x:row>'
        '<x:row r="3"><x:c r="A3" t="s"><x:v>1</x:v></x:c><x:c r="B3" s="1"><x:v>45356</x:v></x:c>'
        '<x:c r="D3" s="2"><x:v>45356</x:v></x:c><x:c r="E3" t="str"><x:v>公式</x:v></x:c>'
        '<x:c r="F3" t="e"><x:v>#N/A</x:v></x:c><x:c r="G3"/></x:row>'
        "</x:sheetData></x:worksheet>"
    )
    path = _hand_made(tmp_path / "other.xlsx", sheet, shared=shared, styles=styles)

    assert list(xlsx.iter_rows(path)) == [
        (1, ["姓名", "出院日期"]),
        (2, []),
        (3, ["张三", dt.datetime(2024, 3, 5), None, 45356, "公式", "#N/A", None]),
    ]


def test_1904_date_system(tmp_path):
    styles = f'<styleSheet {NS}><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14"/></cellXfs></styleSheet>'
    sheet = f'<worksheet {NS}><sheetData><row r="1"><c r="A1" s="1"><v>43894</v></c></row></sheetData></worksheet>'
    path = _hand_made(tmp_path / "mac.xlsx", sheet, styles=styles, date1904=True)

    assert list(xlsx.iter_rows(path)) == [(1, [dt.datetime(2024, 3, 5)])]


def test_row_estimate_reads_the_dimension(tmp_path):
    sheet = (
        f'<worksheet {NS}><dimension ref="A1:T12345"/><sheetData>'
        '<row r="1"><c r="A1"><v>1</v></c></row></sheetData></worksheet>'
    )
    path = _hand_made(tmp_path / "big.xlsx", sheet)

    assert xlsx.estimate_rows(path) == 12345


@pytest.mark.parametrize(
    "content",
    [b"PK\x03\x04 broken", b"", None],
    ids=["broken zip", "empty", "zip without workbook"],
)
def test_damaged_workbooks_are_a_read_error(tmp_path, content):
    path = tmp_path / "damaged.xlsx"
    if content is None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "not a workbook")
    else:
        path.write_bytes(content)

    with pytest.raises(ReadError, match="not a readable Excel workbook"):
        list(read_rows(path))
