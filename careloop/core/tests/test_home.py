"""The home page per role: a nurse's own queue, a supervisor's or leader's departments."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from careloop.core.testing import make_encounter, make_patient
from careloop.followup.choices import TaskStatus
from careloop.patients.tests.factories import make_enrollment, make_plan, make_step, make_task


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def tasks(hospital):
    """Cardiology: alice has 2 due, 1 overdue, 1 done today; 1 unassigned due. Orthopaedics: 1 due."""
    patient = make_patient()
    make_encounter(patient, hospital.cardio)
    plan = make_plan(hospital.cardio)
    enrollment = make_enrollment(plan, patient)
    steps = [make_step(plan, order=n, title=f"第{n}次", day_offset=n) for n in range(1, 6)]
    alice = hospital.alice
    make_task(enrollment, steps[0], assignee=alice, status=TaskStatus.DUE)
    make_task(enrollment, steps[1], assignee=alice, status=TaskStatus.DUE)
    make_task(enrollment, steps[2], assignee=alice, status=TaskStatus.OVERDUE)
    make_task(
        enrollment,
        steps[3],
        assignee=alice,
        status=TaskStatus.DONE,
        completed_at=timezone.now() - dt.timedelta(minutes=5),
    )
    make_task(enrollment, steps[4], assignee=None, status=TaskStatus.DUE)

    ortho_patient = make_patient()
    make_encounter(ortho_patient, hospital.ortho)
    ortho_plan = make_plan(hospital.ortho, name="骨科术后随访")
    make_task(
        make_enrollment(ortho_plan, ortho_patient),
        make_step(ortho_plan),
        assignee=hospital.bob,
        status=TaskStatus.DUE,
    )


def test_nurse_sees_her_own_counts_for_today(client, hospital, tasks):
    client.force_login(hospital.alice)

    response = client.get("/")

    assert response.context["my"] == {
        "due": 2,
        "overdue": 1,
        "callbacks": 0,
        "done_today": 1,
        "pool": 1,
    }
    assert "departments" not in response.context


def test_supervisor_sees_counts_of_her_departments_only(client, hospital, tasks):
    client.force_login(hospital.carol)

    rows = client.get("/").context["departments"]

    assert [
        (r["department__name"], r["due"], r["overdue"], r["unassigned"], r["done_today"])
        for r in rows
    ] == [("心内科", 3, 1, 1, 1)]


def test_leader_sees_every_department(client, hospital, tasks):
    client.force_login(hospital.erin)

    response = client.get("/")

    names = {r["department__name"]: r["due"] for r in response.context["departments"]}
    assert names == {"心内科": 3, "骨科": 1}
    assert response.context["totals"]["due"] == 4
    assert "my" not in response.context  # leaders are read-only: no queue of their own


def test_handler_sees_a_plain_home_page(client, hospital, tasks):
    client.force_login(hospital.henry)

    response = client.get("/")

    assert response.status_code == 200
    assert "my" not in response.context
    assert "departments" not in response.context
