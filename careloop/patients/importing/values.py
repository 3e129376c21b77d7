"""Turning messy cell values into clean ones: dates, phones, sex, ID numbers, identifiers.

Each parser raises ``ValueError`` whose message is a translatable reason (already rendered with
``gettext``) or returns the clean value. Callers prefix the reason with the column's header.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from careloop.core.formats import id_check_digit, normalize_phone
from careloop.patients.choices import EncounterKind, Relation, Sex

_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
_MIN_YEAR, _MAX_YEAR = 1900, 2100


def halfwidth(value: Any) -> str:
    """Cell → text with full-width digits and letters folded (ＮＦＫＣ) and outer spaces removed."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


def text(value: Any) -> str:
    """Free text with runs of white space collapsed; a Chinese name loses inner spaces ('张 三')."""
    cleaned = " ".join(halfwidth(value).split())
    if " " in cleaned and all(_is_cjk(c) for c in cleaned.replace(" ", "").replace("·", "")):
        cleaned = cleaned.replace(" ", "")
    return cleaned


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff"


def identifier(value: Any) -> str:
    """Card, record and encounter numbers: no spaces, full-width folded, '12345.0' → '12345'."""
    cleaned = re.sub(r"\s+", "", halfwidth(value))
    if re.fullmatch(r"\d+\.0+", cleaned):
        cleaned = cleaned.split(".")[0]
    return cleaned


# ---------------------------------------------------------------- dates

_DATE_TIME = re.compile(
    r"^(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?"
    r"(?:\s*[T\s]?\s*(?P<H>\d{1,2})\s*[:时點点]\s*(?P<M>\d{1,2})\s*(?:[:分]\s*(?P<S>\d{1,2})"
    r"(?:\.\d+)?\s*秒?)?\s*分?)?$"
)
_COMPACT = re.compile(
    r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?:(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})?)?$"
)
_SLASH_YEAR_LAST = re.compile(r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{4}")


def _excel_serial(number: float) -> dt.datetime:
    if not 1 <= number < 73051:  # 1900-01-01 … 2100-01-01
        raise ValueError(_("not a valid date"))
    return _EXCEL_EPOCH + dt.timedelta(days=number)


def parse_datetime(value: Any) -> dt.datetime:
    """A naive local datetime from a datetime/date cell, an Excel serial number or text in the
    usual Chinese forms (2024-3-5, 2024/03/05, 2024年3月5日, 20240305, with or without a time)."""
    if isinstance(value, dt.datetime):
        result = value.replace(tzinfo=None) if timezone.is_aware(value) else value
    elif isinstance(value, dt.date):
        result = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, bool):
        raise ValueError(_("not a valid date"))
    elif isinstance(value, int | float):
        result = _serial_or_compact(value)
    else:
        raw = halfwidth(value)
        if re.fullmatch(r"\d+(\.\d+)?", raw) and len(raw.split(".")[0]) <= 5:
            result = _excel_serial(float(raw))
        else:
            result = _parse_text(raw)
    if not _MIN_YEAR <= result.year < _MAX_YEAR:
        raise ValueError(_("not a valid date"))
    return result.replace(microsecond=0)


def _serial_or_compact(number: float) -> dt.datetime:
    if number >= 19000101 and float(number).is_integer():
        return _parse_text(str(int(number)))
    return _excel_serial(float(number))


def _parse_text(raw: str) -> dt.datetime:
    if _SLASH_YEAR_LAST.match(raw):
        # 03/05/2024 is ambiguous (month/day or day/month); refuse rather than guess.
        raise ValueError(_("ambiguous date: write it as year-month-day"))
    match = _DATE_TIME.match(raw) or _COMPACT.match(raw)
    if not match:
        raise ValueError(_("not a valid date"))
    parts = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
    try:
        return dt.datetime(parts["y"], parts["m"], parts["d"], parts["H"], parts["M"], parts["S"])
    except ValueError as exc:
        raise ValueError(_("not a valid date")) from exc


def parse_date(value: Any) -> dt.date:
    return parse_datetime(value).date()


def aware(value: dt.datetime) -> dt.datetime:
    return timezone.make_aware(value, timezone.get_default_timezone())


# ---------------------------------------------------------------- people

_SEX = {
    "男": Sex.MALE, "男性": Sex.MALE, "m": Sex.MALE, "male": Sex.MALE, "1": Sex.MALE,
    "女": Sex.FEMALE, "女性": Sex.FEMALE, "f": Sex.FEMALE, "female": Sex.FEMALE, "2": Sex.FEMALE,
    "未知": Sex.UNKNOWN, "不详": Sex.UNKNOWN, "未说明": Sex.UNKNOWN, "u": Sex.UNKNOWN,
    "unknown": Sex.UNKNOWN, "0": Sex.UNKNOWN, "9": Sex.UNKNOWN,
}  # fmt: skip


def parse_sex(value: Any) -> str:
    """男/女/M/F/1/2 (GB/T 2261.1 codes) → Sex."""
    key = halfwidth(value).lower()
    if key not in _SEX:
        raise ValueError(_("unknown sex value (use 男/女, M/F or 1/2)"))
    return _SEX[key]


def parse_id_number(value: Any) -> str:
    """An 18-character resident ID number (GB 11643) with a correct check digit, upper-cased."""
    if isinstance(value, float) and value >= 1e15:
        # Excel keeps 15 significant digits: an ID number typed into a number cell is damaged.
        raise ValueError(
            _(
                "the ID-card number was stored as a number and lost digits: format the column as text"
            )
        )
    raw = re.sub(r"\s+", "", halfwidth(value)).upper()
    if not re.fullmatch(r"\d{17}[\dX]", raw):
        raise ValueError(_("ID-card number must have 18 characters: 17 digits and a digit or X"))
    try:
        dt.date(int(raw[6:10]), int(raw[10:12]), int(raw[12:14]))
    except ValueError as exc:
        raise ValueError(_("ID-card number contains an invalid birth date")) from exc
    if id_check_digit(raw[:17]) != raw[17]:
        raise ValueError(_("ID-card number check digit is wrong"))
    return raw


_PHONE_SEPARATORS = re.compile(r"[/,，;；、|]+")


def parse_phones(value: Any) -> list[str]:
    """One or more phone numbers ('138 0013 8000', '+86-13800138000', '13800138000/010-12345678')."""
    raw = halfwidth(value)
    numbers: list[str] = []
    for part in _PHONE_SEPARATORS.split(raw):
        if not part.strip():
            continue
        try:
            number = normalize_phone(part)
        except ValueError as exc:
            raise ValueError(_("not a valid phone number")) from exc
        if number not in numbers:
            numbers.append(number)
    if not numbers:
        raise ValueError(_("not a valid phone number"))
    return numbers


_RELATIONS = (
    (Relation.SELF, ("本人", "自己", "患者本人", "self")),
    (Relation.SPOUSE, ("配偶", "夫", "妻", "丈夫", "妻子", "老伴", "爱人", "夫妻", "spouse", "husband", "wife")),
    (Relation.CHILD, ("子", "女", "儿子", "女儿", "子女", "儿女", "长子", "长女", "次子", "次女", "child", "son", "daughter")),
    (Relation.PARENT, ("父", "母", "父亲", "母亲", "父母", "爸爸", "妈妈", "parent", "father", "mother")),
    (Relation.SIBLING, ("兄", "弟", "姐", "妹", "兄弟", "姐妹", "哥哥", "弟弟", "姐姐", "妹妹", "sibling", "brother", "sister")),
)  # fmt: skip
_RELATION_INDEX = {word: relation for relation, words in _RELATIONS for word in words}


def parse_relation(value: Any) -> str:
    """Family relation words → Relation; anything else (孙子, 朋友, 同事 …) is 'other'."""
    return _RELATION_INDEX.get(halfwidth(value).lower(), Relation.OTHER)


_KINDS = {
    "住院": EncounterKind.INPATIENT, "出院": EncounterKind.INPATIENT, "inpatient": EncounterKind.INPATIENT,
    "门诊": EncounterKind.OUTPATIENT, "outpatient": EncounterKind.OUTPATIENT,
    "急诊": EncounterKind.EMERGENCY, "emergency": EncounterKind.EMERGENCY,
}  # fmt: skip


def parse_kind(value: Any) -> str:
    key = halfwidth(value).lower()
    for word, kind in _KINDS.items():
        if key == word or key.startswith(word):
            return kind
    raise ValueError(_("unknown encounter kind (use 门诊, 住院 or 急诊)"))
