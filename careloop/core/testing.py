"""Factory functions and personas shared by every app's tests.

Plain functions with explicit defaults; no random data. Personas:
alice (cardiology nurse), bob (orthopaedics nurse), carol (supervisor, cardiology),
dave (cardiology doctor), erin (leader, hospital-wide, read-only), frank (administrator),
henry (department handler, cardiology).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.utils import timezone

from careloop.accounts.choices import Role
from careloop.accounts.models import Department, User
from careloop.patients.choices import EncounterKind, Sex
from careloop.patients.models import Encounter, Patient

PASSWORD = "Test@2026pass"
_seq = itertools.count(1)


def make_department(code: str = "CARD", name: str = "心内科", **overrides: Any) -> Department:
    department, _ = Department.objects.get_or_create(
        code=code, defaults={"name": name, **overrides}
    )
    return department


def make_user(
    username: str,
    *,
    role: str = Role.NURSE,
    departments: list[Department] | None = None,
    all_departments: bool = False,
    display_name: str = "",
    **overrides: Any,
) -> User:
    user = User.objects.create_user(
        username=username,
        password=PASSWORD,
        role=role,
        all_departments=all_departments,
        display_name=display_name or username,
        **overrides,
    )
    if departments:
        user.departments.set(departments)
    return user


def make_patient(**overrides: Any) -> Patient:
    n = next(_seq)
    fields: dict[str, Any] = {
        "name": "张三",
        "name_initials": "zs",
        "sex": Sex.MALE,
        "birth_date": dt.date(1960, 5, 17),
        "phone": f"1380013{n:04d}",
        "card_no": f"C{n:08d}",
        "record_no": f"R{n:08d}",
    }
    fields.update(overrides)
    return Patient.objects.create(**fields)


def make_encounter(patient: Patient, department: Department, **overrides: Any) -> Encounter:
    n = next(_seq)
    now = timezone.now()
    fields: dict[str, Any] = {
        "encounter_no": f"E{n:08d}",
        "kind": EncounterKind.INPATIENT,
        "started_at": now - dt.timedelta(days=10),
        "discharged_at": now - dt.timedelta(days=3),
        "diagnosis_code": "I21.0",
        "diagnosis_name": "急性前壁心肌梗死",
    }
    fields.update(overrides)
    return Encounter.objects.create(patient=patient, department=department, **fields)
