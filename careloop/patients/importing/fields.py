"""The fields an import file's columns can be mapped to, and the header synonyms that recognise them.

Hospital systems export the same data under many headers (出院科室, 科室名称, 科室代码 …); each field
lists the usual ones, Chinese and English. Headers are compared after ``normalise_header``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

IGNORE = ""  # mapping value of a column that is deliberately not imported


@dataclass(frozen=True)
class Field:
    key: str
    label: Promise
    synonyms: tuple[str, ...]


FIELDS: tuple[Field, ...] = (
    Field(
        "name",
        _("Name"),
        ("姓名", "患者姓名", "病人姓名", "患者", "病人", "name", "patient name", "patient"),
    ),
    Field("sex", _("Sex"), ("性别", "sex", "gender")),
    Field(
        "birth_date",
        _("Birth date"),
        (
            "出生日期",
            "出生年月",
            "出生年月日",
            "生日",
            "birth date",
            "date of birth",
            "dob",
            "birthday",
        ),
    ),
    Field(
        "id_number",
        _("ID-card number"),
        (
            "身份证号",
            "身份证号码",
            "身份证",
            "证件号",
            "证件号码",
            "公民身份号码",
            "身份证件号码",
            "id number",
            "id card",
            "id card number",
            "id card no",
        ),
    ),
    Field(
        "phone",
        _("Phone"),
        (
            "联系电话",
            "电话",
            "手机",
            "手机号",
            "手机号码",
            "患者电话",
            "本人电话",
            "联系方式",
            "电话号码",
            "患者手机",
            "phone",
            "mobile",
            "telephone",
            "tel",
            "phone number",
        ),
    ),
    Field(
        "address",
        _("Address"),
        ("地址", "家庭住址", "住址", "现住址", "联系地址", "家庭地址", "通讯地址", "address"),
    ),
    Field(
        "card_no",
        _("Visit card number"),
        (
            "就诊卡号",
            "卡号",
            "诊疗卡号",
            "就诊卡",
            "就诊卡号码",
            "card no",
            "card number",
            "visit card",
            "visit card number",
        ),
    ),
    Field(
        "record_no",
        _("Medical record number"),
        (
            "病案号",
            "病历号",
            "住院号",
            "病案号码",
            "病案号/住院号",
            "mrn",
            "record no",
            "record number",
            "medical record number",
            "medical record no",
        ),
    ),
    Field(
        "contact_name",
        _("Family contact name"),
        (
            "家属姓名",
            "联系人",
            "联系人姓名",
            "紧急联系人",
            "家属",
            "contact",
            "contact name",
            "emergency contact",
        ),
    ),
    Field(
        "contact_phone",
        _("Family contact phone"),
        (
            "家属电话",
            "家属联系电话",
            "联系人电话",
            "紧急联系人电话",
            "家属手机",
            "家属手机号",
            "联系人手机",
            "contact phone",
            "family phone",
            "emergency phone",
        ),
    ),
    Field(
        "contact_relation",
        _("Relation to the patient"),
        ("与患者关系", "关系", "家属关系", "联系人关系", "与病人关系", "relation", "relationship"),
    ),
    Field(
        "encounter_no",
        _("Encounter number"),
        (
            "住院流水号",
            "就诊流水号",
            "流水号",
            "就诊号",
            "住院登记号",
            "就诊编号",
            "encounter no",
            "encounter number",
            "visit no",
            "visit number",
        ),
    ),
    Field(
        "kind",
        _("Encounter kind"),
        (
            "就诊类型",
            "就诊类别",
            "患者类型",
            "病人类型",
            "encounter kind",
            "encounter type",
            "visit type",
        ),
    ),
    Field(
        "department",
        _("Department"),
        (
            "科室",
            "出院科室",
            "入院科室",
            "就诊科室",
            "所在科室",
            "科室名称",
            "科室代码",
            "科室编码",
            "出院科室名称",
            "department",
            "dept",
            "department code",
        ),
    ),
    Field("ward", _("Ward"), ("病区", "出院病区", "病房", "病区名称", "ward")),
    Field("bed", _("Bed"), ("床号", "床位", "床位号", "bed", "bed no")),
    Field(
        "admitted_at",
        _("Admission date"),
        ("入院日期", "入院时间", "入院日期时间", "admission date", "admitted", "admission"),
    ),
    Field(
        "visit_date",
        _("Visit date"),
        ("就诊日期", "就诊时间", "门诊日期", "挂号日期", "visit date", "visit time"),
    ),
    Field(
        "discharged_at",
        _("Discharge date"),
        ("出院日期", "出院时间", "出院日期时间", "discharge date", "discharged", "discharge"),
    ),
    Field(
        "diagnosis_name",
        _("Discharge diagnosis"),
        ("出院诊断", "诊断", "主要诊断", "出院主要诊断", "诊断名称", "出院诊断名称", "diagnosis"),
    ),
    Field(
        "diagnosis_code",
        _("Diagnosis code (ICD-10)"),
        (
            "诊断编码",
            "ICD编码",
            "ICD10",
            "ICD-10",
            "ICD10编码",
            "疾病编码",
            "诊断代码",
            "出院诊断编码",
            "主要诊断编码",
            "icd",
            "icd code",
            "diagnosis code",
        ),
    ),
    Field(
        "attending_doctor",
        _("Attending doctor"),
        (
            "主治医生",
            "主治医师",
            "主管医生",
            "主管医师",
            "经治医生",
            "经治医师",
            "责任医生",
            "医生",
            "attending doctor",
            "doctor",
        ),
    ),
    Field(
        "surgery_name",
        _("Operation"),
        ("手术名称", "手术", "主要手术", "operation", "surgery", "procedure"),
    ),
    Field(
        "surgery_date",
        _("Operation date"),
        ("手术日期", "手术时间", "operation date", "surgery date", "procedure date"),
    ),
    Field(
        "surgery_code",
        _("Operation code"),
        (
            "手术编码",
            "手术代码",
            "手术操作编码",
            "ICD9编码",
            "ICD-9-CM-3",
            "procedure code",
            "operation code",
        ),
    ),
    Field("surgeon", _("Surgeon"), ("手术医生", "主刀医生", "主刀医师", "术者", "surgeon")),
)

FIELDS_BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}

# Patient identifiers, in the order they identify a patient.
IDENTIFIERS = ("record_no", "card_no", "id_number")

# Columns hospital exports carry that CareLoop deliberately does not store.
IGNORED_HEADERS = ("序号", "行号", "编号", "年龄", "no", "#", "age", "row")

_DROP = re.compile(r"[\s_\-.:：*＊'\"]+")
_BRACKETED = re.compile(r"[(（\[【][^)）\]】]*[)）\]】]")


def normalise_header(text: object) -> str:
    """'  出院日期（yyyy-mm-dd）* ' → '出院日期'; 'Record No.' → 'recordno'."""
    if text is None:
        return ""
    value = unicodedata.normalize("NFKC", str(text)).lower()
    return _DROP.sub("", _BRACKETED.sub("", value))


def _index() -> dict[str, str]:
    index: dict[str, str] = {}
    for field in FIELDS:
        index[normalise_header(field.key)] = field.key
        for synonym in field.synonyms:
            index.setdefault(normalise_header(synonym), field.key)
    for header in IGNORED_HEADERS:
        index.setdefault(normalise_header(header), IGNORE)
    return index


_SYNONYMS = _index()


def guess_field(header: object) -> str | None:
    """The field a header stands for, ``IGNORE`` for known columns CareLoop does not store, else None."""
    key = normalise_header(header)
    if not key:
        return None
    if key in _SYNONYMS:
        return _SYNONYMS[key]
    # '病案号/住院号', '科室(代码)' and the like: try each part.
    for part in re.split(r"[/／|、]", key):
        if part in _SYNONYMS:
            return _SYNONYMS[part]
    return None


def field_choices() -> list[tuple[str, Promise | str]]:
    return [(IGNORE, _("— do not import —")), *((f.key, f.label) for f in FIELDS)]
