from __future__ import annotations

import datetime as dt

from django.utils import timezone

from careloop.core.testing import make_encounter, make_patient
from careloop.followup.models import Enrollment
from careloop.followup.tests.factories import make_discharge, make_plan, make_team

from .endpoints import cardio_patient, ortho_patient
from .factories import api_client

URL = "/api/v1/enrollments/"


def test_enrolment_creates_one_task_per_step(hospital):
    plan = make_plan(hospital.cardio)
    patient = cardio_patient(hospital)
    today = timezone.localdate()

    response = api_client(hospital.alice).post(
        URL,
        {"plan": plan.pk, "patient": patient.pk, "anchor_date": today.isoformat()},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    enrollment = Enrollment.objects.get(pk=body["id"])
    assert (enrollment.plan, enrollment.patient, enrollment.enrolled_by) == (
        plan,
        patient,
        hospital.alice,
    )
    assert body["status"] == "active"
    assert [(t["step"]["day_offset"], t["target_date"]) for t in body["tasks"]] == [
        (3, (today + dt.timedelta(days=3)).isoformat()),
        (30, (today + dt.timedelta(days=30)).isoformat()),
    ]


def test_enrolling_twice_returns_the_same_enrolment(hospital):
    plan = make_plan(hospital.cardio)
    encounter = make_discharge(hospital.cardio, discharged_on=timezone.localdate())
    payload = {"plan": plan.pk, "patient": encounter.patient_id, "encounter": encounter.pk}
    client = api_client(hospital.alice)

    first = client.post(URL, payload, format="json")
    second = client.post(URL, payload, format="json")

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Enrollment.objects.count() == 1


def test_anchor_date_comes_from_the_encounter(hospital):
    plan = make_plan(hospital.cardio)
    discharged_on = timezone.localdate() - dt.timedelta(days=2)
    encounter = make_discharge(hospital.cardio, discharged_on=discharged_on)

    response = api_client(hospital.alice).post(
        URL,
        {"plan": plan.pk, "patient": encounter.patient_id, "encounter": encounter.pk},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["anchor_date"] == discharged_on.isoformat()
    assert response.json()["encounter"] == encounter.pk


def test_anchor_date_is_required_without_an_encounter_giving_one(hospital):
    plan = make_plan(hospital.cardio)

    response = api_client(hospital.alice).post(
        URL, {"plan": plan.pk, "patient": cardio_patient(hospital).pk}, format="json"
    )

    assert response.status_code == 400
    assert "anchor_date" in response.json()


def test_encounter_of_another_patient_is_refused(hospital):
    plan = make_plan(hospital.cardio)
    patient = cardio_patient(hospital)
    other = make_encounter(make_patient(), hospital.cardio)

    response = api_client(hospital.alice).post(
        URL,
        {"plan": plan.pk, "patient": patient.pk, "encounter": other.pk},
        format="json",
    )

    assert response.status_code == 400
    assert "encounter" in response.json()


def test_other_departments_plan_or_patient_is_not_found(hospital):
    today = timezone.localdate().isoformat()
    client = api_client(hospital.alice)

    foreign_plan = client.post(
        URL,
        {
            "plan": make_plan(hospital.ortho).pk,
            "patient": cardio_patient(hospital).pk,
            "anchor_date": today,
        },
        format="json",
    )
    foreign_patient = client.post(
        URL,
        {
            "plan": make_plan(hospital.cardio).pk,
            "patient": ortho_patient(hospital).pk,
            "anchor_date": today,
        },
        format="json",
    )

    assert foreign_plan.status_code == foreign_patient.status_code == 400
    assert "plan" in foreign_plan.json()
    assert "patient" in foreign_patient.json()
    assert not Enrollment.objects.exists()


def test_refusals_of_the_service_are_400(hospital):
    plan = make_plan(hospital.cardio)
    deceased = cardio_patient(hospital)
    deceased.is_deceased = True
    deceased.save(update_fields=["is_deceased"])

    response = api_client(hospital.alice).post(
        URL,
        {"plan": plan.pk, "patient": deceased.pk, "anchor_date": timezone.localdate().isoformat()},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["non_field_errors"]
    assert not Enrollment.objects.exists()


def test_even_plan_assigns_the_tasks_to_a_team_member(hospital):
    team = make_team(hospital.cardio, members=[hospital.alice])
    plan = make_plan(hospital.cardio, team=team, assignment="even")

    response = api_client(hospital.carol).post(
        URL,
        {
            "plan": plan.pk,
            "patient": cardio_patient(hospital).pk,
            "anchor_date": timezone.localdate().isoformat(),
        },
        format="json",
    )

    assert {t["assignee"]["username"] for t in response.json()["tasks"]} == {"alice"}
