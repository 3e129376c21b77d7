"""core.export.export_xlsx: any list to an Excel file (F1.3)."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from urllib.parse import quote

import openpyxl
from django.utils.translation import gettext_lazy

from careloop.core.export import XLSX_CONTENT_TYPE, Column, export_xlsx


def _sheet(response):
    return openpyxl.load_workbook(io.BytesIO(response.content)).active


def test_rows_and_headers_are_written_in_order():
    rows = [{"name": "张三", "age": 66}, {"name": "李四", "age": 70}]

    response = export_xlsx(rows, [("姓名", "name"), ("年龄", "age")], "患者名单")

    assert response["Content-Type"] == XLSX_CONTENT_TYPE
    assert response.row_count == 2
    values = [tuple(c.value for c in row) for row in _sheet(response).iter_rows()]
    assert values == [("姓名", "年龄"), ("张三", 66), ("李四", 70)]


def test_file_name_is_given_in_ascii_and_utf8():
    response = export_xlsx([], [("a", "a")], "患者-2026")

    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="-2026.xlsx"')
    assert f"filename*=UTF-8''{quote('患者-2026.xlsx')}" in disposition


def test_aware_datetimes_are_written_in_shanghai_time():
    when = dt.datetime(2026, 3, 1, 16, 30, tzinfo=dt.UTC)

    response = export_xlsx([{"when": when}], [Column("时间", "when")], "t")

    assert _sheet(response)["A2"].value == dt.datetime(2026, 3, 2, 0, 30)


def test_attribute_paths_callables_methods_and_lazy_text():
    class Department:
        name = "心内科"

    class Row:
        department = Department()
        amount = Decimal("12.50")
        tags = ["术后", "VIP"]
        missing = None

        def get_sex_display(self):
            return gettext_lazy("Male")

    columns = [
        Column("科室", "department.name"),
        Column("金额", "amount"),
        Column("标签", "tags"),
        Column("空", "missing"),
        Column("性别", "get_sex_display"),
        Column("计算", lambda r: r.amount * 2),
    ]

    sheet = _sheet(export_xlsx([Row()], columns, "t"))

    # Lazy text is rendered in the active language: Simplified Chinese by default.
    assert [c.value for c in sheet[2]] == ["心内科", 12.5, "术后, VIP", None, "男", 25]


def test_text_that_looks_like_a_formula_stays_text():
    response = export_xlsx([{"v": '=HYPERLINK("http://x")'}, {"v": "-1"}], [("v", "v")], "t")

    sheet = _sheet(response)
    assert sheet["A2"].value == '=HYPERLINK("http://x")'
    assert sheet["A2"].data_type == "s"
    assert sheet["A3"].data_type == "s"


def test_rows_may_be_a_generator_and_are_counted():
    response = export_xlsx(({"n": i} for i in range(1200)), [("n", "n")], "t")

    assert response.row_count == 1200
    assert _sheet(response).max_row == 1201
