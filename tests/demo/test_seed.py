"""The demo hospital: created once, with working logins, valid identities and work due today."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from careloop.accounts.choices import Role
from careloop.accounts.models import Department, User
from careloop.core.formats import id_birth_date, id_sex, normalize_id_number, normalize_phone
from careloop.demo import data
from careloop.demo.seed import seed_demo
from careloop.followup import states
from careloop.followup.models import Enrollment, FollowUpRecord, Plan, Task, Team
from careloop.followup.queries import workspace_tasks
from careloop.patients.choices import EncounterKind
from careloop.patients.models import Encounter, Medication, Patient, PatientContact, Surgery
from careloop.surveys.models import Response

NOW = dt.datetime(2026, 3, 16, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
TODAY = NOW.date()
PATIENTS = 120
ICD10 = re.compile(r"^[A-Z]\d{2}(\.\d{1,2})?$")
MODELS = (
    Department,
    User,
    Team,
    Plan,
    Patient,
    PatientContact,
    Encounter,
    Surgery,
    Medication,
    Task,
    FollowUpRecord,
    Response,
)


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[dict]:
    """One small demo hospital for the whole module (seeding takes seconds), removed afterwards."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        counts = seed_demo(now=NOW, patients=PATIENTS)
        try:
            yield counts
        finally:
            call_command("flush", interactive=False, verbosity=0)


def _user(username: str) -> User:
    return User.objects.get(username=username)


@pytest.mark.django_db
def test_second_run_creates_nothing(demo: dict) -> None:
    before = {model.__name__: model.objects.count() for model in MODELS}

    again = seed_demo(now=NOW + dt.timedelta(hours=1), patients=PATIENTS)

    assert again == {}
    assert {model.__name__: model.objects.count() for model in MODELS} == before
    assert demo["patients"] == PATIENTS == Patient.objects.count()


@pytest.mark.django_db
def test_demo_logins_have_their_roles_and_departments(demo: dict) -> None:
    clinical = set(data.CLINICAL)

    admin = _user("admin")
    assert (admin.role, admin.is_superuser, admin.all_departments) == (Role.ADMIN, True, True)
    for username, code in (("nurse_cardio", "CARD"), ("nurse_ortho", "ORTH")):
        nurse = _user(username)
        assert nurse.role == Role.NURSE
        assert set(nurse.departments.values_list("code", flat=True)) == {code}
    supervisor = _user("supervisor")
    assert supervisor.role == Role.SUPERVISOR
    assert set(supervisor.departments.values_list("code", flat=True)) == clinical | {"FUC"}
    doctor = _user("doctor_cardio")
    assert doctor.role == Role.DOCTOR
    assert list(doctor.departments.values_list("code", flat=True)) == ["CARD"]
    leader = _user("leader")
    assert (leader.role, leader.all_departments, leader.is_read_only) == (Role.LEADER, True, True)
    assert set(Department.objects.values_list("code", flat=True)) >= clinical | {"FUC"}
    assert len(clinical) >= 8


@pytest.mark.django_db
def test_every_role_can_log_in_through_the_login_form(demo: dict) -> None:
    for role in Role.values:
        user = User.objects.filter(role=role).order_by("pk").first()
        assert user is not None, role
        client = Client()

        response = client.post(
            "/accounts/login/", {"username": user.username, "password": data.PASSWORD}
        )

        assert response.status_code == 302, (role, response.status_code)
        assert client.get("/").status_code == 200, role


@pytest.mark.django_db
def test_nurse_cardio_has_tasks_due_today(demo: dict) -> None:
    nurse = _user("nurse_cardio")

    queue = list(workspace_tasks(nurse, now=NOW))

    due_today = [t for t in queue if t.window_start <= TODAY <= t.deadline]
    assert due_today, "nurse_cardio has nothing to do today"
    assert {t.department.code for t in queue} == {"CARD"}
    assert any(t.step.questionnaire_id for t in due_today)
    # The orthopaedics nurse has work too, in her own department only.
    ortho = list(workspace_tasks(_user("nurse_ortho"), now=NOW))
    assert ortho and {t.department.code for t in ortho} == {"ORTH"}


@pytest.mark.django_db
def test_patients_have_valid_id_numbers_and_phones(demo: dict) -> None:
    regions = {region.code for region in data.REGIONS}
    for patient in Patient.objects.all():
        assert normalize_id_number(patient.id_number) == patient.id_number
        assert patient.id_number[:6] in regions
        assert id_birth_date(patient.id_number) == patient.birth_date
        assert dt.date(1935, 1, 1) <= patient.birth_date <= dt.date(2005, 12, 31)
        assert id_sex(patient.id_number) == patient.sex
        assert normalize_phone(patient.phone) == patient.phone
        assert re.fullmatch(r"1[3-9]\d{9}", patient.phone)
        assert 2 <= len(patient.name) <= 4
        assert patient.card_no and patient.record_no and patient.address
    phones = list(PatientContact.objects.values_list("phone", flat=True))
    assert all(normalize_phone(phone) == phone for phone in phones)
    assert len(set(phones)) == len(phones)
    assert PatientContact.objects.exclude(relation="self").exists()


@pytest.mark.django_db
def test_encounters_are_recent_stays_with_icd10_diagnoses(demo: dict) -> None:
    stays = Encounter.objects.filter(kind=EncounterKind.INPATIENT)
    assert stays.count() >= PATIENTS * 0.8
    for stay in stays:
        assert ICD10.match(stay.diagnosis_code), stay.diagnosis_code
        assert stay.diagnosis_name
        assert stay.started_at < stay.discharged_at <= NOW
        assert NOW - stay.discharged_at < dt.timedelta(days=90)
        assert stay.attending_doctor.role == Role.DOCTOR
    for surgery in Surgery.objects.select_related("encounter"):
        assert surgery.encounter.started_at < surgery.performed_at < surgery.encounter.discharged_at
    assert Surgery.objects.filter(code="36.06").exists()
    assert Medication.objects.filter(drug="阿司匹林肠溶片", dose="100mg").exists()
    assert Encounter.objects.filter(kind=EncounterKind.OUTPATIENT).exists()


@pytest.mark.django_db
def test_plans_follow_their_schedules_with_questionnaires(demo: dict) -> None:
    schedules = {
        plan.name: [step.day_offset for step in plan.steps.order_by("order")]
        for plan in Plan.objects.all()
    }

    assert schedules["PCI术后随访"] == [3, 7, 30, 90]
    assert schedules["膝关节置换术后随访"] == [3, 14, 30, 90]
    assert schedules["2型糖尿病随访"] == [7, 30, 90, 180]
    assert schedules["产后随访"] == [3, 7, 42]
    pci = Plan.objects.get(name="PCI术后随访")
    assert "您好" in pci.script and pci.team.members.filter(username="nurse_cardio").exists()
    assert pci.steps.filter(questionnaire__code="pci").count() == 4


@pytest.mark.django_db
def test_history_has_answers_retries_and_a_few_overdue_tasks(demo: dict) -> None:
    done = Task.objects.filter(status=states.DONE)
    assert done.count() >= 50
    assert FollowUpRecord.objects.filter(outcome="reached", response__isnull=False).exists()
    assert FollowUpRecord.objects.filter(outcome="no_answer").exists()
    overdue = Task.objects.filter(states.status_filter({states.OVERDUE}, TODAY))
    assert 0 < overdue.count() < done.count() / 5
    recorded = FollowUpRecord.objects.values_list("recorded_at", flat=True)
    assert all(NOW - dt.timedelta(days=91) <= when < NOW for when in recorded)
    for enrollment in Enrollment.objects.all():  # dated when the replayed job enrolled them
        assert enrollment.anchor_date <= timezone.localdate(enrollment.enrolled_at) <= TODAY
    assert all(
        r.submitted_at == r.followup_record.recorded_at
        for r in Response.objects.select_related("followup_record")
    )


@pytest.mark.django_db
def test_automated_follow_up_calls_are_due_today_within_an_all_day_policy(demo: dict) -> None:
    from careloop.demo import automated
    from careloop.followup.choices import Channel
    from careloop.outreach import policy
    from careloop.surveys import schema

    rules = policy.current_policy()
    assert rules.windows == automated.DEMO_POLICY["windows"]
    assert policy.in_contact_hours(NOW.replace(hour=3), rules)  # the demo calls at any hour
    assert policy.in_contact_hours(NOW.replace(hour=23, minute=30), rules)
    plans = Plan.objects.filter(name=automated.PLAN_NAME)
    assert set(plans.values_list("department__code", flat=True)) == set(automated.AUTOMATED_PLANS)
    for plan in plans:
        assert [(s.day_offset, s.channel) for s in plan.steps.all()] == [(3, Channel.IVR)]
    due = Task.objects.filter(channel=Channel.IVR).filter(
        states.status_filter(states.ACTIONABLE, TODAY)
    )
    assert 0 < due.count() <= PATIENTS // 10  # a few with 120 patients, a few dozen with 2,000
    assert demo["automated follow-up tasks"] >= due.count()
    # Every question of the automated questionnaire can be answered with the keypad.
    step = plans.first().steps.get()
    definition = step.questionnaire.versions.get(published_at__isnull=False).definition
    for question in schema.questions(definition):
        assert schema.keypad_choices(question) or question["type"] == "number", question["key"]
