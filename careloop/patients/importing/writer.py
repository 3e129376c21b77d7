"""Writing one chunk of clean rows: bulk look-ups, per-row decisions in memory, then bulk writes.

Every decision that can reject a row is taken before the row touches any object, so a rejected row
leaves nothing behind. The caller wraps ``ChunkWriter.run`` in a transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from careloop.core.formats import pinyin_initials
from careloop.patients.choices import Relation
from careloop.patients.importing.fastinsert import insert_objects
from careloop.patients.importing.fields import FIELDS_BY_KEY, IDENTIFIERS
from careloop.patients.importing.rows import CleanRow, RowRejected
from careloop.patients.models import Encounter, Patient, PatientContact, Surgery

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
_UNIQUE_KEYS = ("record_no", "card_no")


@lru_cache(maxsize=50_000)
def _initials(name: str) -> str:
    return pinyin_initials(name)[:50]


def derived_encounter_no(patient_pk: int, started: dt.datetime, department_pk: int) -> str:
    """The encounter number of a row without one: same patient, start day and department → same number."""
    day = timezone.localtime(started).strftime("%Y%m%d")
    return f"IMP-{patient_pk}-{day}-{department_pk}"


@dataclass
class ChunkResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def add(self, other: ChunkResult) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected += other.rejected


def _label(key: str) -> str:
    return str(FIELDS_BY_KEY[key].label)


def _unchanged(obj: Any, key: str, new: Any) -> bool:
    """Whether ``obj.key`` already holds ``new``; foreign keys are compared by id (no query)."""
    if hasattr(new, "_meta"):
        return bool(getattr(obj, f"{key}_id") == new.pk)
    return bool(getattr(obj, key) == new)


class ChunkWriter:
    """Creates or updates the patients, encounters, contacts and operations of a chunk of rows.

    ``allowed_departments`` (None: all) limits a department-bound user to their departments.
    """

    def __init__(
        self,
        rows: list[CleanRow],
        *,
        allowed_departments: set[int] | None = None,
    ) -> None:
        self.rows = rows
        self.allowed = allowed_departments
        self.now = timezone.now()
        self.result = ChunkResult()
        self.new_patients: list[Patient] = []
        self.dirty_patients: dict[int, Patient] = {}
        self.patient_fields: set[str] = set()
        self.new_encounters: list[Encounter] = []
        # id(encounter) → (patient, start, department id): numbered once the patient has a key.
        self.derived: dict[int, tuple[Patient, dt.datetime, int]] = {}
        self.dirty_encounters: dict[int, Encounter] = {}
        self.encounter_fields: set[str] = set()
        self.new_contacts: list[PatientContact] = []
        self.dirty_contacts: dict[int, PatientContact] = {}
        self.contact_fields: set[str] = set()
        self.new_surgeries: list[Surgery] = []
        self.dirty_surgeries: dict[int, Surgery] = {}
        self.surgery_fields: set[str] = set()

    # ------------------------------------------------------------ look-ups

    def _load(self) -> None:
        keys = {key: {getattr(r, key) for r in self.rows} - {""} for key in IDENTIFIERS}
        query = Q()
        for key, found in keys.items():
            if found:
                query |= Q(**{f"{key}__in": found})
        patients = list(Patient.objects.filter(query)) if query else []
        self.by_key: dict[str, dict[str, list[Patient]]] = {key: {} for key in IDENTIFIERS}
        for patient in patients:
            self._index(patient)
        by_pk = {p.pk: p for p in patients}

        # Encounter numbers: given ones, and derived ones of patients that already exist.
        numbers = {r.encounter_no for r in self.rows if r.encounter_no}
        for row in self.rows:
            if row.encounter is None or row.encounter_no or row.started_at is None:
                continue
            department = row.encounter.get("department")
            try:
                known = self._find(row)
            except RowRejected:
                continue  # reported when the row is processed
            if known is not None and department is not None:
                numbers.add(derived_encounter_no(known.pk, row.started_at, department.pk))
        self.encounters: dict[str, Encounter] = (
            {e.encounter_no: e for e in Encounter.objects.filter(encounter_no__in=numbers)}
            if numbers
            else {}
        )
        self.new_encounter_by_key: dict[tuple[int, str, int], Encounter] = {}

        # Patients the acting user may change (ids of the objects: new ones have no pk yet).
        self.visible: set[int] = set()
        if self.allowed is not None and by_pk:
            self.visible = {
                id(by_pk[pk])
                for pk in Encounter.objects.filter(
                    patient_id__in=by_pk, department_id__in=self.allowed
                ).values_list("patient_id", flat=True)
            }
        self.contacts: dict[int, dict[str, PatientContact]] = {}
        if by_pk and any(r.contact or r.extra_phones for r in self.rows):
            for contact in PatientContact.objects.filter(patient_id__in=by_pk):
                self.contacts.setdefault(id(by_pk[contact.patient_id]), {})[contact.phone] = contact
        self.surgeries: dict[int, list[Surgery]] = {}
        encounter_ids = [e.pk for e in self.encounters.values()]
        if encounter_ids and any(r.surgery for r in self.rows):
            encounters_by_pk = {e.pk: e for e in self.encounters.values()}
            for surgery in Surgery.objects.filter(encounter_id__in=encounter_ids):
                encounter = encounters_by_pk[surgery.encounter_id]
                self.surgeries.setdefault(id(encounter), []).append(surgery)

    def _index(self, patient: Patient) -> None:
        for key in IDENTIFIERS:
            value = getattr(patient, key)
            if value:
                owners = self.by_key[key].setdefault(value, [])
                if all(owner is not patient for owner in owners):
                    owners.append(patient)

    def _unindex(self, patient: Patient, key: str) -> None:
        value = getattr(patient, key)
        if value and value in self.by_key[key]:
            self.by_key[key][value] = [p for p in self.by_key[key][value] if p is not patient]

    def _owners(self, key: str, value: str) -> list[Patient]:
        return self.by_key[key].get(value, []) if value else []

    def _find(self, row: CleanRow) -> Patient | None:
        """The patient a row is about: by record number, else card number, else ID-card number.

        Raises RowRejected when the identifiers point at different patients.
        """
        for position, key in enumerate(IDENTIFIERS):
            owners = self._owners(key, getattr(row, key))
            if not owners:
                continue
            if len(owners) > 1:
                raise RowRejected(
                    [_("several patients have this %(field)s") % {"field": _label(key)}]
                )
            patient = owners[0]
            for higher in IDENTIFIERS[:position]:
                value, stored = getattr(row, higher), getattr(patient, higher)
                if value and stored and value != stored:
                    raise RowRejected(
                        [
                            _("the %(field)s belongs to a patient with another %(other)s")
                            % {"field": _label(key), "other": _label(higher)}
                        ]
                    )
            return patient
        return None

    # ------------------------------------------------------------ rows

    def run(self) -> ChunkResult:
        self._load()
        for row in self.rows:
            try:
                outcome = self._row(row)
            except RowRejected as rejected:
                self.result.rejected.append((row.row, rejected.reason))
                continue
            setattr(self.result, outcome, getattr(self.result, outcome) + 1)
        self._flush()
        return self.result

    def _row(self, row: CleanRow) -> str:
        patient = self._find(row)
        is_new = patient is None
        if is_new and not row.patient.get("name"):
            raise RowRejected([_("the name is missing (needed for a new patient)")])
        for key in _UNIQUE_KEYS:
            owners = self._owners(key, getattr(row, key))
            if owners and owners[0] is not patient:
                raise RowRejected(
                    [_("the %(field)s belongs to another patient") % {"field": _label(key)}]
                )
        if self.allowed is not None:
            self._check_scope(row, patient)

        patient_changes = (
            dict(row.patient)
            if is_new
            else {k: v for k, v in row.patient.items() if not _unchanged(patient, k, v)}
        )
        if is_new:
            patient = Patient(**patient_changes)
        assert patient is not None
        encounter_plan = self._plan_encounter(row, patient)
        encounter, encounter_changes, encounter_is_new = encounter_plan or (None, {}, False)
        contact_plans = self._plan_contacts(
            row, patient, patient_changes.get("phone", patient.phone)
        )
        surgery_plan = self._plan_surgery(row, encounter) if encounter is not None else None

        # Nothing below can reject the row: apply the plans.
        changed = bool(patient_changes) and not is_new
        if self.allowed is not None and encounter is not None:
            self.visible.add(id(patient))
        if is_new:
            patient.name_initials = _initials(patient.name)
            self.new_patients.append(patient)
            self._index(patient)
        elif patient_changes:
            for key in patient_changes:
                if key in IDENTIFIERS:
                    self._unindex(patient, key)
            for key, value in patient_changes.items():
                setattr(patient, key, value)
            if "name" in patient_changes:
                patient.name_initials = _initials(patient.name)
                patient_changes["name_initials"] = patient.name_initials
            self._index(patient)
            self._mark(patient, patient_changes, self.dirty_patients, self.patient_fields)
        if encounter is not None:
            if encounter_is_new:
                self.new_encounters.append(encounter)
            elif encounter_changes:
                for key, value in encounter_changes.items():
                    setattr(encounter, key, value)
                changed = True
                self._mark(
                    encounter, encounter_changes, self.dirty_encounters, self.encounter_fields
                )
        for contact, contact_changes, contact_is_new in contact_plans:
            if contact_is_new:
                self.new_contacts.append(contact)
                self.contacts.setdefault(id(patient), {})[contact.phone] = contact
                changed = True
            elif contact_changes:
                for key, value in contact_changes.items():
                    setattr(contact, key, value)
                changed = True
                if contact.pk:
                    self._mark(contact, contact_changes, self.dirty_contacts, self.contact_fields)
        if surgery_plan is not None:
            surgery, surgery_changes, surgery_is_new = surgery_plan
            if surgery_is_new:
                self.new_surgeries.append(surgery)
                self.surgeries.setdefault(id(encounter), []).append(surgery)
                changed = True
            elif surgery_changes:
                for key, value in surgery_changes.items():
                    setattr(surgery, key, value)
                changed = True
                if surgery.pk:
                    self._mark(surgery, surgery_changes, self.dirty_surgeries, self.surgery_fields)
        if is_new or encounter_is_new:
            return CREATED
        return UPDATED if changed else UNCHANGED

    def _check_scope(self, row: CleanRow, patient: Patient | None) -> None:
        """A department-bound user imports into their departments and changes only their patients."""
        assert self.allowed is not None
        department = (row.encounter or {}).get("department")
        if department is not None and department.pk not in self.allowed:
            raise RowRejected(
                [
                    _("you may not import into the department “%(department)s”")
                    % {"department": department.name}
                ]
            )
        if department is None and (patient is None or id(patient) not in self.visible):
            raise RowRejected([_("the patient is not treated in one of your departments")])

    @staticmethod
    def _mark(obj: Any, changes: dict[str, Any], dirty: dict[int, Any], fields: set[str]) -> None:
        if obj.pk is None:
            return  # created in this chunk: the bulk insert writes its final values
        dirty[obj.pk] = obj
        fields.update(changes)

    def _plan_encounter(
        self, row: CleanRow, patient: Patient
    ) -> tuple[Encounter, dict[str, Any], bool] | None:
        if row.encounter is None:
            return None
        values = dict(row.encounter)
        department = values.get("department")
        encounter: Encounter | None
        key: tuple[int, str, int] | None = None
        if row.encounter_no:
            encounter = self.encounters.get(row.encounter_no)
            if encounter is not None and not self._belongs(encounter, patient):
                raise RowRejected([_("the encounter number belongs to another patient")])
        else:
            if department is None:
                raise RowRejected(
                    [
                        _(
                            "the encounter has no department: add a department column or choose a default department"
                        )
                    ]
                )
            if row.started_at is None:
                raise RowRejected([_("the encounter has no admission, visit or discharge date")])
            day = timezone.localtime(row.started_at).strftime("%Y%m%d")
            key = (id(patient), day, department.pk)
            encounter = self.new_encounter_by_key.get(key)
            if encounter is None and patient.pk is not None:
                encounter = self.encounters.get(
                    derived_encounter_no(patient.pk, row.started_at, department.pk)
                )
        if encounter is None:
            if department is None:
                raise RowRejected(
                    [
                        _(
                            "the encounter has no department: add a department column or choose a default department"
                        )
                    ]
                )
            if row.started_at is None:
                raise RowRejected([_("the encounter has no admission, visit or discharge date")])
            values.setdefault("started_at", row.started_at)
            values.setdefault("kind", row.kind)
            encounter = Encounter(patient=patient, encounter_no=row.encounter_no, **values)
            if row.encounter_no:
                self.encounters[row.encounter_no] = encounter
            else:
                assert key is not None
                self.new_encounter_by_key[key] = encounter
                self.derived[id(encounter)] = (patient, row.started_at, department.pk)
            return encounter, values, True
        if self.allowed is not None and encounter.department_id not in self.allowed:
            raise RowRejected([_("the encounter belongs to a department that is not yours")])
        changes = {k: v for k, v in values.items() if not _unchanged(encounter, k, v)}
        started = changes.get("started_at", encounter.started_at)
        discharged = changes.get("discharged_at", encounter.discharged_at)
        if started and discharged and discharged < started:
            raise RowRejected([_("the discharge date is before the admission date")])
        return encounter, changes, False

    @staticmethod
    def _belongs(encounter: Encounter, patient: Patient) -> bool:
        if encounter.pk is None:
            return encounter.patient is patient
        return patient.pk is not None and encounter.patient_id == patient.pk

    def _plan_contacts(
        self, row: CleanRow, patient: Patient, own_phone: str
    ) -> list[tuple[PatientContact, dict[str, Any], bool]]:
        wanted: list[tuple[str, dict[str, Any]]] = []
        if row.contact:
            details = {k: v for k, v in row.contact.items() if k != "phone"}
            wanted.append((row.contact["phone"], details))
        for phone in row.extra_phones:
            if phone != own_phone and all(phone != w[0] for w in wanted):
                wanted.append((phone, {"relation": Relation.SELF}))
        plans: list[tuple[PatientContact, dict[str, Any], bool]] = []
        known = self.contacts.get(id(patient), {})
        for phone, details in wanted:
            contact = known.get(phone)
            if contact is None:
                contact = PatientContact(
                    patient=patient,
                    phone=phone,
                    name=details.get("name", ""),
                    relation=details.get("relation", Relation.OTHER),
                )
                plans.append((contact, {}, True))
            else:
                changes = {k: v for k, v in details.items() if not _unchanged(contact, k, v)}
                plans.append((contact, changes, False))
        return plans

    def _plan_surgery(
        self, row: CleanRow, encounter: Encounter
    ) -> tuple[Surgery, dict[str, Any], bool] | None:
        if not row.surgery or "performed_at" not in row.surgery:
            return None
        values = row.surgery
        day = timezone.localtime(values["performed_at"]).date()
        for surgery in self.surgeries.get(id(encounter), []):
            same_operation = (
                surgery.code == values["code"]
                if values.get("code") and surgery.code
                else surgery.name == values["name"]
            )
            if same_operation and timezone.localtime(surgery.performed_at).date() == day:
                changes = {k: v for k, v in values.items() if not _unchanged(surgery, k, v)}
                return surgery, changes, False
        return Surgery(encounter=encounter, **values), {}, True

    # ------------------------------------------------------------ writes

    def _flush(self) -> None:
        if self.new_patients:
            Patient.objects.bulk_create(self.new_patients, batch_size=500)
        if self.dirty_patients:
            for patient in self.dirty_patients.values():
                patient.updated_at = self.now
            Patient.objects.bulk_update(
                list(self.dirty_patients.values()),
                sorted(self.patient_fields | {"updated_at"}),
                batch_size=500,
            )
        for encounter in self.new_encounters:
            encounter.patient = encounter.patient  # the patient has its primary key now
            if id(encounter) in self.derived:
                patient, started, department_pk = self.derived[id(encounter)]
                encounter.encounter_no = derived_encounter_no(patient.pk, started, department_pk)
        if any(s.encounter.pk is None for s in self.new_surgeries):
            # New operations need the primary keys of their new encounters.
            Encounter.objects.bulk_create(self.new_encounters, batch_size=500)
        else:
            insert_objects(Encounter, self.new_encounters)
        if self.dirty_encounters:
            for encounter in self.dirty_encounters.values():
                encounter.updated_at = self.now
            Encounter.objects.bulk_update(
                list(self.dirty_encounters.values()),
                sorted(self.encounter_fields | {"updated_at"}),
                batch_size=500,
            )
        for contact in self.new_contacts:
            contact.patient = contact.patient
        insert_objects(PatientContact, self.new_contacts)
        if self.dirty_contacts:
            PatientContact.objects.bulk_update(
                list(self.dirty_contacts.values()), sorted(self.contact_fields), batch_size=500
            )
        for surgery in self.new_surgeries:
            surgery.encounter = surgery.encounter
        insert_objects(Surgery, self.new_surgeries)
        if self.dirty_surgeries:
            Surgery.objects.bulk_update(
                list(self.dirty_surgeries.values()), sorted(self.surgery_fields), batch_size=500
            )
