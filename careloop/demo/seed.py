"""``seed_demo``: the demo hospital, created once.

Master data (departments, staff, teams, patients, encounters) is written directly with
``bulk_create``; questionnaires come from ``surveys.samples``; follow-up work goes through the
follow-up services (``auto_enrol``, ``refresh_states``, ``record_outcome``) exactly as in the
running system. Every part is keyed on natural keys (department code, user name, team and plan
name, visit-card number), so a second run finds everything in place and creates nothing.

All data comes from ``random.Random(2026)``: the same hospital on every machine; only the dates
move with ``now`` so the last 90 days always have content.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections import Counter
from decimal import Decimal
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from careloop.accounts.models import Department, User
from careloop.demo import automated, data, history, people
from careloop.followup.models import Plan, PlanStep, Team
from careloop.patients.choices import EncounterKind, Relation
from careloop.patients.models import (
    DischargeOrder,
    Encounter,
    Medication,
    Patient,
    PatientContact,
    Surgery,
)
from careloop.surveys.models import Questionnaire

logger = logging.getLogger(__name__)

SEED = 2026
CARD_PREFIX = "8"


def _card(number: int) -> str:
    """The visit-card number (就诊卡号) of the n-th demo patient."""
    return f"{CARD_PREFIX}{number:09d}"


FIRST_CARD = _card(1)
HISTORY_DAYS = 90

# The first patients are fixed so that every demo, however small, has work due today for the
# cardiology and orthopaedics nurses (discharges whose plan steps fall on today), and a few tasks
# nobody got to in time (overdue).
# (department, diagnosis code, days since discharge, left undone)
ANCHORED: list[tuple[str, str, int, bool]] = [
    ("CARD", "I21.0", 3, False),
    ("CARD", "I25.1", 3, False),
    ("CARD", "I21.1", 7, False),
    ("CARD", "I20.0", 7, False),
    ("CARD", "I25.1", 30, False),
    ("CARD", "I21.0", 30, False),
    ("CARD", "I25.1", 2, False),
    ("CARD", "I21.0", 8, False),
    ("CARD", "I21.1", 11, True),
    ("ORTH", "M17.1", 3, False),
    ("ORTH", "M17.1", 14, False),
    ("ORTH", "M17.1", 2, False),
    ("ORTH", "M17.1", 18, True),
    ("ENDO", "E11.9", 7, False),
    ("ENDO", "E11.9", 12, True),
    ("OBST", "O80", 3, False),
    ("OBST", "O82", 7, False),
    ("GSUR", "K35.8", 3, False),
    ("NEUR", "I63.9", 7, False),
]


# Diagnoses that arrive through the emergency department, at any hour (ICD-10 prefixes).
EMERGENCIES = ("I21", "I63", "I61", "G45", "S72", "S52", "K35", "O80", "O82", "J18", "I50")


def _tz() -> dt.tzinfo:
    return timezone.get_current_timezone()


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=_tz())


# --- staff ---------------------------------------------------------------------------------------


def _departments(counts: Counter[str]) -> dict[str, Department]:
    existing = {d.code: d for d in Department.objects.all()}
    missing = [
        Department(code=code, name=name, kind=kind)
        for code, name, kind, _wards in data.DEPARTMENTS
        if code not in existing
    ]
    if missing:
        Department.objects.bulk_create(missing)
        counts["departments"] += len(missing)
    return {
        d.code: d for d in Department.objects.filter(code__in=[c for c, *_ in data.DEPARTMENTS])
    }


def _staff(departments: dict[str, Department], counts: Counter[str]) -> dict[str, User]:
    existing = set(
        User.objects.filter(username__in=[s.username for s in data.STAFF]).values_list(
            "username", flat=True
        )
    )
    todo = [member for member in data.STAFF if member.username not in existing]
    if todo:
        # One hash for every demo login: PBKDF2 is slow on purpose, and they share a password.
        password = make_password(data.PASSWORD)
        users = [
            User(
                username=member.username,
                password=password,
                display_name=member.display_name,
                first_name=member.display_name,
                role=member.role,
                all_departments=member.all_departments,
                is_superuser=member.superuser,
                is_staff=member.superuser,
                staff_code=member.staff_code,
            )
            for member in todo
        ]
        User.objects.bulk_create(users)
        created = {
            u.username: u for u in User.objects.filter(username__in=[m.username for m in todo])
        }
        links = [
            User.departments.through(
                user_id=created[member.username].pk, department_id=departments[code].pk
            )
            for member in todo
            for code in member.departments
        ]
        User.departments.through.objects.bulk_create(links)
        counts["users"] += len(todo)
        for code, slug in data.DEPT_SLUG.items():
            head, department = created.get(f"handler_{slug}"), departments[code]
            if head is not None and department.head_id is None:
                department.head = head
                department.save(update_fields=["head"])
    return {
        u.username: u for u in User.objects.filter(username__in=[s.username for s in data.STAFF])
    }


def _team_members(code: str, users: dict[str, User]) -> list[User]:
    """The department's own nurses, helped by a follow-up-center nurse where there is only one."""
    own = [users[m.username] for m in data.STAFF if m.role == "nurse" and m.departments == (code,)]
    if len(own) < 2:
        helpers = [m.username for m in data.STAFF if m.username.startswith("nurse_fuc")]
        own.append(users[helpers[data.CLINICAL.index(code) % len(helpers)]])
    return own


def _teams(
    departments: dict[str, Department], users: dict[str, User], counts: Counter[str]
) -> dict[str, Team]:
    teams: dict[str, Team] = {}
    for index, code in enumerate(data.CLINICAL):
        department = departments[code]
        name = f"{department.name}随访小组"
        team = Team.objects.filter(name=name, department=department).first()
        if team is None:
            team = Team.objects.create(
                name=name,
                department=department,
                supervisor=users["supervisor" if index < 4 else "supervisor2"],
            )
            team.members.set(_team_members(code, users))
            counts["teams"] += 1
        teams[code] = team
    return teams


# --- questionnaires and plans --------------------------------------------------------------------


def _questionnaires(users: dict[str, User]) -> dict[str, Questionnaire]:
    from careloop.alerts.services import ensure_default_rules
    from careloop.surveys.samples import ensure_sample_questionnaires

    questionnaires = dict(ensure_sample_questionnaires(acting_user=users["admin"]))
    # Alert rules on the sample questionnaires' answers (fever, bleeding, pain …), so the
    # demo's history raises alerts for the doctors.
    ensure_default_rules()
    return questionnaires


def _plans(
    departments: dict[str, Department],
    users: dict[str, User],
    teams: dict[str, Team],
    questionnaires: dict[str, Questionnaire],
    counts: Counter[str],
) -> list[Plan]:
    plans = []
    for spec in data.PLANS:
        department = departments[spec.department]
        plan = Plan.objects.filter(name=spec.name, department=department).first()
        if plan is None:
            plan = Plan.objects.create(
                name=spec.name,
                department=department,
                rules=spec.rules,
                team=teams[spec.department],
                script=spec.script,
                max_attempts=3,
                retry_interval_hours=24,
                created_by=users[f"doctor_{data.DEPT_SLUG[spec.department]}"],
            )
            questionnaire = questionnaires.get(spec.questionnaire)
            PlanStep.objects.bulk_create(
                PlanStep(
                    plan=plan,
                    order=order,
                    title=step.title,
                    day_offset=step.day,
                    window_before=1,
                    window_after=3 if step.day < 60 else 7,
                    questionnaire=questionnaire,
                    script=step.script,
                )
                for order, step in enumerate(spec.steps, start=1)
            )
            counts["plans"] += 1
        plans.append(plan)
    return plans


# --- patients ------------------------------------------------------------------------------------


class _PatientFactory:
    """Builds unsaved patients, contacts and encounters from one seeded generator."""

    def __init__(self, rng: random.Random, today: dt.date, doctors: dict[str, list[User]]):
        self.rng = rng
        self.today = today
        self.doctors = doctors
        self.phones: set[str] = set()
        self.encounter_seq = 0

    def case(self, department: str, code: str = "") -> data.Case:
        cases = data.CASES[department]
        if code:
            return next(c for c in cases if c.code == code)
        return self.rng.choices(cases, weights=[c.weight for c in cases])[0]

    def patient(self, number: int, case: data.Case, department: Department) -> Patient:
        rng = self.rng
        sex = case.sex or (
            "M" if rng.random() < (0.62 if department.code == "CARD" else 0.5) else "F"
        )
        born = people.birth_date(rng, *case.birth_years)
        place = people.region(rng)
        name = people.full_name(rng, sex, born.year)
        insurance = rng.choices(
            ("城镇职工医保", "城乡居民医保", "自费", "商业保险"), weights=(55, 32, 9, 4)
        )[0]
        fields: dict[str, Any] = {
            "name": name,
            "name_initials": _initials(name),
            "sex": sex,
            "birth_date": born,
            "id_number": people.id_number(rng, place.code, born, sex),
            "phone": people.mobile(rng, self.phones),
            "address": people.address(rng, place),
            "card_no": _card(number),
            "record_no": f"{300000 + number}",
            "vip_level": rng.choices((0, 1, 2), weights=(95, 4, 1))[0],
            "tags": list(case.tags),
            "custom_fields": {"医保类型": insurance},
            "registered_department": department,
        }
        return Patient(**fields)

    def contacts(self, patient: Patient, born: dt.date) -> list[PatientContact]:
        rng = self.rng
        contacts = [
            PatientContact(
                patient=patient,
                name=patient.name,
                relation=Relation.SELF,
                phone=patient.phone,
                is_primary=True,
            )
        ]
        age = self.today.year - born.year
        family_name = patient.name[:2] if patient.name[:2] in {"欧阳", "诸葛"} else patient.name[0]
        if age >= 28 and rng.random() < 0.8:
            spouse_sex = "F" if patient.sex == "M" else "M"
            contacts.append(
                PatientContact(
                    patient=patient,
                    name=people.full_name(rng, spouse_sex, born.year),
                    relation=Relation.SPOUSE,
                    phone=people.mobile(rng, self.phones),
                )
            )
        if age >= 55 and rng.random() < 0.85:
            child_sex = rng.choice("MF")
            child_year = born.year + rng.randint(24, 32)
            surname = family_name if patient.sex == "M" else ""
            contacts.append(
                PatientContact(
                    patient=patient,
                    name=people.full_name(rng, child_sex, child_year, surname),
                    relation=Relation.CHILD,
                    phone=people.mobile(rng, self.phones),
                )
            )
        elif age < 28 and rng.random() < 0.7:
            contacts.append(
                PatientContact(
                    patient=patient,
                    name=people.full_name(rng, rng.choice("MF"), born.year - 27, family_name),
                    relation=Relation.PARENT,
                    phone=people.mobile(rng, self.phones),
                )
            )
        return contacts

    def _encounter_no(self, prefix: str, day: dt.date) -> str:
        self.encounter_seq += 1
        return f"{prefix}{day:%Y%m%d}{self.encounter_seq:05d}"

    def stay(
        self,
        patient: Patient,
        department: Department,
        case: data.Case,
        days_ago: int,
        *,
        operated: bool = False,
    ) -> tuple[Encounter, list[Surgery], list[Medication], list[DischargeOrder]]:
        rng = self.rng
        discharge_day = self.today - dt.timedelta(days=days_ago)
        length = rng.randint(*case.stay_days)
        urgent = case.code.startswith(EMERGENCIES)
        admitted = _at(
            discharge_day - dt.timedelta(days=length),
            rng.randint(0, 23) if urgent else rng.randint(8, 16),
            rng.choice((0, 15, 30, 45)),
        )
        discharged = _at(discharge_day, rng.randint(9, 11), rng.choice((0, 10, 20, 30, 40, 50)))
        doctor = rng.choice(self.doctors[department.code])
        wards = next(w for c, _n, _k, w in data.DEPARTMENTS if c == department.code)
        encounter = Encounter(
            patient=patient,
            encounter_no=self._encounter_no("ZY", admitted.date()),
            kind=EncounterKind.INPATIENT,
            department=department,
            ward=rng.choice(wards),
            bed=f"{rng.randint(1, 46)}床",
            attending_doctor=doctor,
            attending_doctor_name=doctor.display_name,
            started_at=admitted,
            discharged_at=discharged,
            diagnosis_code=case.code,
            diagnosis_name=case.name,
        )
        surgeries = []
        if case.surgery and (operated or rng.random() < case.surgery_share):
            surgeries.append(
                Surgery(
                    encounter=encounter,
                    code=case.surgery[0],
                    name=case.surgery[1],
                    performed_at=self._operation_time(case, admitted, length),
                    surgeon_name=doctor.display_name,
                )
            )
        medications = [
            Medication(
                encounter=encounter,
                drug=drug,
                dose=dose,
                frequency=frequency,
                route=route,
                quantity=Decimal(quantity),
                unit=unit,
                daily_amount=Decimal(str(daily)),
            )
            for drug, dose, frequency, route, quantity, unit, daily in case.drugs
        ]
        orders = [DischargeOrder(encounter=encounter, text=text) for text in case.orders]
        return encounter, surgeries, medications, orders

    def _operation_time(self, case: data.Case, admitted: dt.datetime, length: int) -> dt.datetime:
        """Emergencies go to theatre (or the cath lab) within hours of arrival; planned
        operations are done in working hours on the first or second day of the stay."""
        rng = self.rng
        if case.code.startswith(EMERGENCIES):
            return admitted + dt.timedelta(minutes=rng.randint(45, 240))
        delay = min(rng.randint(1, 2), max(length - 2, 0))
        day = timezone.localdate(admitted) + dt.timedelta(days=delay)
        performed = _at(day, rng.randint(8, 15), rng.choice((0, 15, 30, 45)))
        return max(performed, admitted + dt.timedelta(hours=2))

    def visit(
        self, patient: Patient, department: Department, code: str, name: str, day: dt.date
    ) -> Encounter:
        rng = self.rng
        doctor = rng.choice(self.doctors[department.code])
        return Encounter(
            patient=patient,
            encounter_no=self._encounter_no("MZ", day),
            kind=EncounterKind.OUTPATIENT,
            department=department,
            attending_doctor=doctor,
            attending_doctor_name=doctor.display_name,
            started_at=_at(day, rng.randint(8, 16), rng.choice((0, 10, 20, 30, 40, 50))),
            diagnosis_code=code,
            diagnosis_name=name,
        )


def _initials(name: str) -> str:
    from careloop.core.formats import pinyin_initials

    return pinyin_initials(name)


def _patients(
    rng: random.Random,
    today: dt.date,
    count: int,
    departments: dict[str, Department],
    users: dict[str, User],
    counts: Counter[str],
) -> bool:
    """Create ``count`` patients with their encounters; False when they already exist."""
    if Patient.objects.filter(card_no=FIRST_CARD).exists():
        return False
    doctors = {
        code: [
            users[m.username] for m in data.STAFF if m.role == "doctor" and m.departments == (code,)
        ]
        for code in data.CLINICAL
    }
    factory = _PatientFactory(rng, today, doctors)
    weights = [data.DEPARTMENT_WEIGHTS[c] for c in data.CLINICAL]
    patients: list[Patient] = []
    plans: list[tuple[Patient, str, data.Case | None, int | None, bool]] = []
    for number in range(1, count + 1):
        if number <= len(ANCHORED):
            code, diagnosis, days_ago, _undone = ANCHORED[number - 1]
            case: data.Case | None = factory.case(code, diagnosis)
        elif rng.random() < 0.1:
            code, _dx, _name = rng.choice(data.OUTPATIENT_VISITS)
            case, days_ago = None, None
        else:
            code = rng.choices(data.CLINICAL, weights=weights)[0]
            case = factory.case(code)
            days_ago = rng.randint(1, HISTORY_DAYS - 1)
        template = case or data.Case("", "", 0, (0, 0), birth_years=(1940, 2000))
        patient = factory.patient(number, template, departments[code])
        patients.append(patient)
        plans.append((patient, code, case, days_ago, number <= len(ANCHORED)))
    Patient.objects.bulk_create(patients, batch_size=500)
    if patients[0].pk is None:  # databases that do not return ids from bulk inserts
        ids = dict(
            Patient.objects.filter(card_no__startswith=CARD_PREFIX).values_list("card_no", "pk")
        )
        for patient in patients:
            patient.pk = ids[patient.card_no]

    contacts: list[PatientContact] = []
    encounters: list[Encounter] = []
    extras: list[tuple[Encounter, list[Surgery], list[Medication], list[DischargeOrder]]] = []
    for patient, code, case, days_ago, anchored in plans:
        department = departments[code]
        contacts.extend(factory.contacts(patient, patient.birth_date or factory.today))
        if case is None or days_ago is None:
            for _n in range(rng.randint(1, 3)):
                dept_code, dx_code, dx_name = rng.choice(
                    [v for v in data.OUTPATIENT_VISITS if v[0] == code]
                )
                day = today - dt.timedelta(days=rng.randint(1, HISTORY_DAYS - 1))
                encounters.append(
                    factory.visit(patient, departments[dept_code], dx_code, dx_name, day)
                )
            continue
        stay = factory.stay(patient, department, case, days_ago, operated=anchored)
        encounters.append(stay[0])
        extras.append(stay)
        admitted_day = timezone.localdate(stay[0].started_at)
        if rng.random() < 0.35 and (today - admitted_day).days < HISTORY_DAYS - 10:
            day = admitted_day - dt.timedelta(days=rng.randint(1, 10))
            encounters.append(factory.visit(patient, department, case.code, case.name, day))
        if case.outpatient[0] and days_ago >= 21 and rng.random() < 0.4:
            day = today - dt.timedelta(days=rng.randint(1, days_ago - 14))
            encounters.append(factory.visit(patient, department, *case.outpatient, day))
    PatientContact.objects.bulk_create(contacts, batch_size=1000)
    Encounter.objects.bulk_create(encounters, batch_size=500)
    if encounters and encounters[0].pk is None:
        ids = dict(Encounter.objects.values_list("encounter_no", "pk"))
        for encounter in encounters:
            encounter.pk = ids[encounter.encounter_no]
    surgeries, medications, orders = [], [], []
    # bulk_create takes each row's encounter id from its (now saved) encounter.
    for _encounter, ops, meds, notes in extras:
        surgeries.extend(ops)
        medications.extend(meds)
        orders.extend(notes)
    Surgery.objects.bulk_create(surgeries, batch_size=1000)
    Medication.objects.bulk_create(medications, batch_size=1000)
    DischargeOrder.objects.bulk_create(orders, batch_size=1000)
    counts["patients"] += len(patients)
    counts["contacts"] += len(contacts)
    counts["encounters"] += len(encounters)
    counts["surgeries"] += len(surgeries)
    counts["medications"] += len(medications)
    counts["discharge orders"] += len(orders)
    return True


# --- entry point ---------------------------------------------------------------------------------


def seed_demo(*, now: dt.datetime | None = None, patients: int = 2000) -> dict[str, int]:
    """Create the demo hospital once; returns what was created (empty when it already existed)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    rng = random.Random(SEED)
    counts: Counter[str] = Counter()
    # Alerts of the replayed answers are raised when the transaction commits: one line each.
    with history._quiet("careloop.alerts"), transaction.atomic():
        departments = _departments(counts)
        users = _staff(departments, counts)
        teams = _teams(departments, users, counts)
        questionnaires = _questionnaires(users)
        _plans(departments, users, teams, questionnaires, counts)  # nurses' plans
        if _patients(rng, today, patients, departments, users, counts):
            undone = [_card(number) for number, row in enumerate(ANCHORED, start=1) if row[3]]
            untouched = set(Patient.objects.filter(card_no__in=undone).values_list("pk", flat=True))
            counts.update(history.simulate(rng, now=now, days=HISTORY_DAYS, untouched=untouched))
        # After the history: automated follow-up calls due today for the simulated patients.
        automated.seed(departments, users, teams, counts, now=now)
    logger.info("demo hospital seeded: %s", dict(counts) or "nothing to do")
    return dict(counts)
