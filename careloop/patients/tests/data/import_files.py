"""Builders of the messy spreadsheets the import tests feed in (deterministic data only)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import openpyxl

from careloop.core.formats import id_check_digit

HEADER = [
    "序号", "姓名", "性别", "出生日期", "身份证号", "联系电话", "家属姓名", "家属电话", "与患者关系",
    "就诊卡号", "病案号", "出院科室", "病区", "床号", "入院日期", "出院日期", "出院诊断", "ICD编码",
    "主治医生", "住院流水号",
]  # fmt: skip


def id_number(first17: str) -> str:
    """A valid 18-character ID number: the 17 given digits and the right check digit."""
    return first17 + id_check_digit(first17)


def bad_check_digit(first17: str) -> str:
    right = id_check_digit(first17)
    return first17 + ("1" if right != "1" else "2")


ZHANG_ID = id_number("11010119600517001")  # male (odd 17th digit), born 1960-05-17


def row(**values: Any) -> list[Any]:
    """A data row in HEADER order from keyword values named after the header (Chinese)."""
    return [values.get(h) for h in HEADER]


def messy_rows() -> list[list[Any] | None]:
    """Rows 3 onwards of the messy workbook (row 1: merged title, row 2: header); None = blank line."""
    return [
        # row 3: everything, in the forms hospital systems export
        row(序号=1, 姓名="张三", 性别="男", 出生日期=dt.datetime(1960, 5, 17), 身份证号=ZHANG_ID,
            联系电话="+86 138-0013-8000", 家属姓名="张小明", 家属电话="139 0013 9000",
            与患者关系="儿子", 就诊卡号="C0001", 病案号="R0001", 出院科室="心内科", 病区="一病区",
            床号=12, 入院日期=dt.datetime(2024, 3, 1, 8, 30), 出院日期="2024年3月5日",
            出院诊断="急性心肌梗死", ICD编码="i21.901", 主治医生="刘大卫", 住院流水号="ZY20240001"),
        None,  # row 4: blank line
        # row 5: full-width digits, Excel serial date, compact text date, department by code
        row(序号=2, 姓名="李四", 性别="女", 出生日期="1975/8/9", 联系电话="１３９００１３９００１",
            病案号="Ｒ０００２", 出院科室="CARD", 入院日期=45352, 出院日期="20240306"),
        HEADER,  # row 6: the header repeated (page break of a printed export)
        # row 7: ID number with a wrong check digit
        row(序号=3, 姓名="王五", 性别="男", 身份证号=bad_check_digit("11010119700101001"),
            联系电话="13800138002", 病案号="R0003", 出院科室="心内科", 出院日期="2024-03-07"),
        # row 8: unknown department
        row(序号=4, 姓名="赵六", 联系电话="13800138003", 病案号="R0004", 出院科室="神经外科",
            出院日期="2024-03-07"),
        # row 9: no name for a new patient
        row(序号=5, 联系电话="13800138004", 病案号="R0005", 出院科室="心内科", 出院日期="2024-03-07"),
        # row 10: trailing spaces, 1/2 sex codes, landline, dotted and timed text dates
        row(序号=6, 姓名="  钱七  ", 性别=2, 出生日期="1980-01-02 00:00:00", 联系电话="021-12345678",
            病案号="R0006 ", 出院科室=" 骨科 ", 入院日期="2024.03.02", 出院日期="2024-03-08 10:00"),
        # row 11: not a phone number
        row(序号=7, 姓名="孙八", 联系电话="12345", 病案号="R0007", 出院科室="心内科",
            出院日期="2024-03-07"),
        # row 12: a second stay of 张三 in another department
        row(序号=8, 姓名="张三", 性别="男", 身份证号=ZHANG_ID, 联系电话="13800138000",
            就诊卡号="C0001", 病案号="R0001", 出院科室="骨科", 入院日期="2024-02-01",
            出院日期="2024-02-05", 住院流水号="ZY20240002"),
        [None, "   ", None],  # row 13: a line of spaces only
    ]  # fmt: skip


def write_xlsx(
    path: Path,
    rows: list[list[Any] | None],
    *,
    header: list[str] | None = None,
    title: str | None = "2024年3月出院患者随访名单",
) -> Path:
    """An xlsx with an optional merged title row, the header and the rows (None → blank line)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    header = header or HEADER
    if title:
        sheet.append([title])
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(header))
    sheet.append(header)
    for values in rows:
        sheet.append(values if values is not None else [])
    workbook.save(path)
    return path


def messy_xlsx(path: Path) -> Path:
    return write_xlsx(path, messy_rows())


def change_phone(rows: list[list[Any] | None], *, record_no: str, phone: str) -> None:
    for values in rows:
        if values and len(values) == len(HEADER) and values[HEADER.index("病案号")] == record_no:
            values[HEADER.index("联系电话")] = phone
