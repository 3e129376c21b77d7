"""One spreadsheet row → a ``CleanRow`` of typed values, or the reasons it is rejected.

Only cells that hold a value count as present: an empty cell never clears stored data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.utils.translation import gettext as _

from careloop.accounts.models import Department, User
from careloop.core.formats import id_birth_date, id_sex
from careloop.patients.choices import EncounterKind, Sex
from careloop.patients.importing import values
from careloop.patients.importing.fields import IGNORE
from careloop.patients.models import Encounter, Patient, PatientContact, Surgery

ENCOUNTER_FIELDS = frozenset(
    {
        "encounter_no", "kind", "ward", "bed", "admitted_at", "visit_date", "discharged_at",
        "diagnosis_name", "diagnosis_code", "attending_doctor",
        "surgery_name", "surgery_date", "surgery_code", "surgeon",
    }
)  # fmt: skip
SURGERY_FIELDS = frozenset({"surgery_name", "surgery_date", "surgery_code", "surgeon"})


def _max_length(model: type[models.Model], name: str) -> int:
    field = model._meta.get_field(name)
    assert isinstance(field, models.CharField) and field.max_length is not None
    return field.max_length


_LIMITS: dict[str, int] = {
    "name": _max_length(Patient, "name"),
    "address": _max_length(Patient, "address"),
    "card_no": _max_length(Patient, "card_no"),
    "record_no": _max_length(Patient, "record_no"),
    "contact_name": _max_length(PatientContact, "name"),
    "encounter_no": _max_length(Encounter, "encounter_no"),
    "ward": _max_length(Encounter, "ward"),
    "bed": _max_length(Encounter, "bed"),
    "attending_doctor": _max_length(Encounter, "attending_doctor_name"),
    "diagnosis_code": _max_length(Encounter, "diagnosis_code"),
    "diagnosis_name": _max_length(Encounter, "diagnosis_name"),
    "surgery_name": _max_length(Surgery, "name"),
    "surgery_code": _max_length(Surgery, "code"),
    "surgeon": _max_length(Surgery, "surgeon_name"),
}


class RowRejected(Exception):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass
class CleanRow:
    """The typed values of one row; dicts hold only the fields the row gives a value for."""

    row: int
    patient: dict[str, Any] = field(default_factory=dict)
    extra_phones: list[str] = field(default_factory=list)
    contact: dict[str, Any] | None = None
    encounter_no: str = ""
    encounter: dict[str, Any] | None = None
    started_at: dt.datetime | None = None  # the encounter's start: admission, visit or discharge
    kind: str = EncounterKind.INPATIENT  # for a new encounter: given, or guessed from the dates
    surgery: dict[str, Any] | None = None

    @property
    def record_no(self) -> str:
        return str(self.patient.get("record_no", ""))

    @property
    def card_no(self) -> str:
        return str(self.patient.get("card_no", ""))

    @property
    def id_number(self) -> str:
        return str(self.patient.get("id_number", ""))


@dataclass
class Columns:
    """Which cell index feeds which field, and the file's header text for each field."""

    indexes: dict[str, list[int]]
    labels: dict[str, str]

    @classmethod
    def from_header(cls, labels: list[str], fields: list[str | None]) -> Columns:
        indexes: dict[str, list[int]] = {}
        names: dict[str, str] = {}
        for index, (label, key) in enumerate(zip(labels, fields, strict=True)):
            if not key or key == IGNORE:
                continue
            indexes.setdefault(key, []).append(index)
            names.setdefault(key, label)
        return cls(indexes=indexes, labels=names)

    def __contains__(self, key: str) -> bool:
        return key in self.indexes


class Departments:
    """Departments looked up by code (any case) or name, loaded once per import."""

    def __init__(self) -> None:
        departments = list(Department.objects.all())
        self._index: dict[str, Department] = {}
        for department in departments:
            self._index[values.halfwidth(department.name).lower()] = department
        for department in departments:  # a code wins over a name spelled the same
            self._index[values.halfwidth(department.code).lower()] = department

    def find(self, raw: Any) -> Department | None:
        return self._index.get(" ".join(values.halfwidth(raw).split()).lower())


class Doctors:
    """Staff looked up by display name, so an attending doctor's name links to their account when unique."""

    def __init__(self) -> None:
        seen: dict[str, list[User]] = {}
        for user in User.objects.filter(is_active=True).exclude(display_name=""):
            seen.setdefault(user.display_name, []).append(user)
        self._index = {name: users[0] for name, users in seen.items() if len(users) == 1}

    def find(self, name: str) -> User | None:
        return self._index.get(name)


class RowCleaner:
    def __init__(
        self,
        columns: Columns,
        *,
        departments: Departments,
        doctors: Doctors,
        default_department: Department | None,
    ) -> None:
        self.columns = columns
        self.departments = departments
        self.doctors = doctors
        self.default_department = default_department
        self.has_encounter_columns = any(key in columns for key in ENCOUNTER_FIELDS)

    def _raw(self, cells: list[Any]) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for key, indexes in self.columns.indexes.items():
            for index in indexes:
                if index < len(cells):
                    value = cells[index]
                    if value is not None and (not isinstance(value, str) or value.strip()):
                        raw[key] = value
                        break
        return raw

    def clean(self, number: int, cells: list[Any]) -> CleanRow:
        """Raises RowRejected with every reason found in the row."""
        raw = self._raw(cells)
        reasons: list[str] = []
        row = CleanRow(row=number)

        def take(key: str, parse: Callable[[Any], Any]) -> Any:
            if key not in raw:
                return None
            try:
                result = parse(raw[key])
            except ValueError as exc:
                reasons.append(
                    _("%(column)s: %(problem)s")
                    % {"column": self.columns.labels[key], "problem": exc}
                )
                return None
            limit = _LIMITS.get(key)
            if isinstance(result, str):
                if not result:
                    return None
                if limit and len(result) > limit:
                    reasons.append(
                        _("%(column)s: longer than %(max)d characters")
                        % {"column": self.columns.labels[key], "max": limit}
                    )
                    return None
            return result

        # Patient.
        patient = row.patient
        for key in ("record_no", "card_no"):
            if (value := take(key, values.identifier)) is not None:
                patient[key] = value
        if (id_number := take("id_number", values.parse_id_number)) is not None:
            patient["id_number"] = id_number
        if (name := take("name", values.text)) is not None:
            patient["name"] = name
        if (sex := take("sex", values.parse_sex)) is not None:
            patient["sex"] = sex
        if (birth := take("birth_date", values.parse_date)) is not None:
            if birth > dt.date.today():
                reasons.append(
                    _("%(column)s: the date is in the future")
                    % {"column": self.columns.labels["birth_date"]}
                )
            patient["birth_date"] = birth
        if (address := take("address", values.text)) is not None:
            patient["address"] = address
        if (phones := take("phone", values.parse_phones)) is not None:
            patient["phone"] = phones[0]
            row.extra_phones = phones[1:]
        if id_number:
            self._derive_from_id(patient, id_number, reasons)
        if not any(patient.get(key) for key in ("record_no", "card_no", "id_number")):
            reasons.append(_("no medical record number, visit card number or ID-card number"))

        # Family contact.
        contact_phones = take("contact_phone", values.parse_phones)
        if contact_phones:
            row.contact = {"phone": contact_phones[0]}
            if (contact_name := take("contact_name", values.text)) is not None:
                row.contact["name"] = contact_name
            if "contact_relation" in raw:
                row.contact["relation"] = values.parse_relation(raw["contact_relation"])
            row.extra_phones += [
                p
                for p in contact_phones[1:]
                if p not in row.extra_phones and p != patient.get("phone")
            ]

        # Department: checked whenever given, so a typo is reported, not ignored.
        department = None
        if "department" in raw:
            department = self.departments.find(raw["department"])
            if department is None:
                reasons.append(
                    _("%(column)s: unknown department “%(value)s”")
                    % {
                        "column": self.columns.labels["department"],
                        "value": values.text(raw["department"])[:50],
                    }
                )
        elif self.default_department is not None:
            department = self.default_department

        if any(key in raw for key in ENCOUNTER_FIELDS):
            self._clean_encounter(row, raw, take, department, reasons)

        if reasons:
            raise RowRejected(reasons)
        return row

    def _derive_from_id(self, patient: dict[str, Any], id_number: str, reasons: list[str]) -> None:
        sex, birth = id_sex(id_number), id_birth_date(id_number)
        given_sex = patient.get("sex")
        if given_sex in (None, Sex.UNKNOWN):
            patient["sex"] = sex
        elif given_sex != sex:
            reasons.append(_("the sex does not match the ID-card number"))
        given_birth = patient.get("birth_date")
        if given_birth is None:
            patient["birth_date"] = birth
        elif given_birth != birth:
            reasons.append(_("the birth date does not match the ID-card number"))

    def _clean_encounter(
        self,
        row: CleanRow,
        raw: dict[str, Any],
        take: Callable[[str, Callable[[Any], Any]], Any],
        department: Department | None,
        reasons: list[str],
    ) -> None:
        encounter: dict[str, Any] = {}
        row.encounter_no = take("encounter_no", values.identifier) or ""
        if department is not None:
            encounter["department"] = department
        admitted = take("admitted_at", values.parse_datetime)
        visited = take("visit_date", values.parse_datetime)
        discharged = take("discharged_at", values.parse_datetime)
        if admitted or visited:
            encounter["started_at"] = values.aware(admitted or visited)
        if discharged:
            encounter["discharged_at"] = values.aware(discharged)
        start = encounter.get("started_at") or encounter.get("discharged_at")
        row.started_at = start
        if (
            "started_at" in encounter
            and "discharged_at" in encounter
            and encounter["discharged_at"] < encounter["started_at"]
        ):
            reasons.append(_("the discharge date is before the admission date"))
        if (kind := take("kind", values.parse_kind)) is not None:
            encounter["kind"] = kind
            row.kind = kind
        elif admitted or discharged or "ward" in raw or "bed" in raw or not visited:
            row.kind = EncounterKind.INPATIENT
        else:
            row.kind = EncounterKind.OUTPATIENT
        for key, attribute in (
            ("ward", "ward"),
            ("bed", "bed"),
            ("diagnosis_name", "diagnosis_name"),
        ):
            if (value := take(key, values.text)) is not None:
                encounter[attribute] = value
        if (code := take("diagnosis_code", values.identifier)) is not None:
            encounter["diagnosis_code"] = code.upper()
        if (doctor := take("attending_doctor", values.text)) is not None:
            encounter["attending_doctor_name"] = doctor
            user = self.doctors.find(doctor)
            if user is not None:
                encounter["attending_doctor"] = user
        row.encounter = encounter

        if any(key in raw for key in SURGERY_FIELDS):
            surgery: dict[str, Any] = {}
            name = take("surgery_name", values.text)
            code = take("surgery_code", values.identifier)
            performed = take("surgery_date", values.parse_datetime)
            if name:
                surgery["name"] = name
            if code:
                surgery["code"] = code
            if (surgeon := take("surgeon", values.text)) is not None:
                surgery["surgeon_name"] = surgeon
            if performed:
                surgery["performed_at"] = values.aware(performed)
            if not name and not code:
                reasons.append(_("the operation has no name"))
            elif not performed and "surgery_date" not in raw:
                reasons.append(_("the operation has no date"))
            surgery.setdefault("name", code or "")
            row.surgery = surgery
