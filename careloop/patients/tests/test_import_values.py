"""Cleaning of messy cell values and recognition of column headers for the patient import."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from careloop.patients.choices import EncounterKind, Relation, Sex
from careloop.patients.importing import values
from careloop.patients.importing.fields import IGNORE, guess_field, normalise_header
from careloop.patients.tests.data.import_files import bad_check_digit, id_number


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-3-5", dt.datetime(2024, 3, 5)),
        ("2024/03/05", dt.datetime(2024, 3, 5)),
        ("2024年3月5日", dt.datetime(2024, 3, 5)),
        ("2024年3月5号", dt.datetime(2024, 3, 5)),
        ("20240305", dt.datetime(2024, 3, 5)),
        (20240305, dt.datetime(2024, 3, 5)),
        ("2024.03.05", dt.datetime(2024, 3, 5)),
        ("２０２４－０３－０５", dt.datetime(2024, 3, 5)),
        ("2024-03-05 14:30", dt.datetime(2024, 3, 5, 14, 30)),
        ("2024/3/5 14:30:15", dt.datetime(2024, 3, 5, 14, 30, 15)),
        ("2024-03-05T14:30:15.123", dt.datetime(2024, 3, 5, 14, 30, 15)),
        ("2024年3月5日 14时30分", dt.datetime(2024, 3, 5, 14, 30)),
        ("202403051430", dt.datetime(2024, 3, 5, 14, 30)),
        (45356, dt.datetime(2024, 3, 5)),
        (45356.5, dt.datetime(2024, 3, 5, 12, 0)),
        ("45356", dt.datetime(2024, 3, 5)),
        (dt.datetime(2024, 3, 5, 8, 0), dt.datetime(2024, 3, 5, 8, 0)),
        (dt.date(2024, 3, 5), dt.datetime(2024, 3, 5)),
    ],
)
def test_dates_in_the_forms_hospital_exports_use(raw, expected):
    assert values.parse_datetime(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("03/05/2024", "ambiguous date: write it as year-month-day"),
        ("2024-02-30", "not a valid date"),
        ("昨天", "not a valid date"),
        ("1850-01-01", "not a valid date"),
        (0, "not a valid date"),
        (True, "not a valid date"),
    ],
)
def test_unusable_dates_give_a_reason(raw, reason):
    with pytest.raises(ValueError, match=reason):
        values.parse_datetime(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("男", Sex.MALE), ("女", Sex.FEMALE), ("M", Sex.MALE), ("f", Sex.FEMALE), (1, Sex.MALE),
        (2.0, Sex.FEMALE), ("2", Sex.FEMALE), ("男性", Sex.MALE), ("未知", Sex.UNKNOWN), ("Ｍ", Sex.MALE),
    ],
)  # fmt: skip
def test_sex_codes(raw, expected):
    assert values.parse_sex(raw) == expected


def test_unknown_sex_value_is_a_reason():
    with pytest.raises(ValueError, match="unknown sex value"):
        values.parse_sex("X")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+86 138 0013 8000", ["13800138000"]),
        ("138-0013-8000", ["13800138000"]),
        ("１３８００１３８０００", ["13800138000"]),
        (13800138000, ["13800138000"]),
        (13800138000.0, ["13800138000"]),
        ("0086 13800138000", ["13800138000"]),
        ("010-12345678", ["010-12345678"]),
        ("13800138000/13900139000", ["13800138000", "13900139000"]),
        ("13800138000，13800138000", ["13800138000"]),
    ],
)
def test_phone_numbers(raw, expected):
    assert values.parse_phones(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "138001380000", "13800138000/abc", "电话"])
def test_bad_phone_numbers(raw):
    with pytest.raises(ValueError, match="not a valid phone number"):
        values.parse_phones(raw)


def test_id_numbers():
    valid = id_number("11010119900307123")
    assert values.parse_id_number(f" {valid.lower()} ") == valid.upper()
    with pytest.raises(ValueError, match="check digit is wrong"):
        values.parse_id_number(bad_check_digit("11010119900307123"))
    with pytest.raises(ValueError, match="must have 18 characters"):
        values.parse_id_number("1101011990030712")
    with pytest.raises(ValueError, match="invalid birth date"):
        values.parse_id_number(id_number("11010119901307123"))
    with pytest.raises(ValueError, match="stored as a number and lost digits"):
        values.parse_id_number(1.10101199003071e17)  # an ID typed into a number cell


def test_identifiers_names_and_relations():
    assert values.identifier(" Ｒ０００２ ") == "R0002"
    assert values.identifier(12345.0) == "12345"
    assert values.identifier("ZY 2024 0001") == "ZY20240001"
    assert values.text("  张  三 ") == "张三"
    assert values.text("Li  Lei ") == "Li Lei"
    assert values.text("阿依古丽·买买提") == "阿依古丽·买买提"
    assert values.parse_relation("老伴") == Relation.SPOUSE
    assert values.parse_relation("女儿") == Relation.CHILD
    assert values.parse_relation("孙子") == Relation.OTHER
    assert values.parse_kind("住院") == EncounterKind.INPATIENT
    assert values.parse_kind("门诊患者") == EncounterKind.OUTPATIENT


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("姓名", "name"), (" 患者姓名 ", "name"), ("出院日期（yyyy-mm-dd）", "discharged_at"),
        ("*病案号", "record_no"), ("病案号/住院号", "record_no"), ("住院号", "record_no"),
        ("ICD-10", "diagnosis_code"), ("ICD编码", "diagnosis_code"), ("Record No.", "record_no"),
        ("家属电话", "contact_phone"), ("联系人", "contact_name"), ("与患者关系", "relation"),
        ("科室代码", "department"), ("出院科室", "department"), ("住院流水号", "encounter_no"),
        ("序号", IGNORE), ("年龄", IGNORE), ("备注", None), ("", None),
    ],
)  # fmt: skip
def test_headers_are_recognised_by_their_usual_names(header, field):
    expected = "contact_relation" if field == "relation" else field
    assert guess_field(header) == expected


def test_header_normalisation():
    assert normalise_header(" 出院日期（yyyy-mm-dd） ") == "出院日期"
    assert normalise_header("Record No.") == "recordno"
