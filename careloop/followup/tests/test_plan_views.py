"""Plan and team screens (F2.1): doctors define plans with steps, supervisors edit teams."""

from __future__ import annotations

import pytest
from django.utils import timezone

from careloop.core import testing
from careloop.followup import services
from careloop.followup.models import Plan, PlanStep, Team
from careloop.followup.tests.factories import make_plan, make_questionnaire, make_team

pytestmark = pytest.mark.django_db


def step_data(prefix_index: int, **values) -> dict[str, str]:
    fields = {
        "title": "",
        "day_offset": "",
        "window_before": "1",
        "window_after": "3",
        "channel": "phone",
        "questionnaire": "",
        "script": "",
    }
    fields.update({k: str(v) for k, v in values.items()})
    return {f"steps-{prefix_index}-{k}": v for k, v in fields.items()}


def plan_data(hospital, steps: list[dict], initial: int = 0, **overrides) -> dict[str, str]:
    data = {
        "name": "冠心病PCI术后随访",
        "department": str(hospital.cardio.pk),
        "trigger": "discharge",
        "auto_enrol": "on",
        "is_active": "on",
        "team": "",
        "assignment": "pool",
        "max_attempts": "3",
        "retry_interval_hours": "24",
        "script": "您好,这里是心内科随访中心。",
        "diagnosis_prefixes": "I21, i25；I20",
        "surgery_codes": "36.06",
        "min_age": "18",
        "max_age": "",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": str(initial),
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for index, step in enumerate(steps):
        data.update(step_data(index, **step))
    data.update({k: str(v) for k, v in overrides.items()})
    return data


def test_doctor_creates_a_plan_with_rules_and_steps(client, hospital):
    questionnaire = make_questionnaire()
    client.force_login(hospital.dave)

    response = client.post(
        "/followup/plans/new/",
        plan_data(
            hospital,
            [
                {"title": "出院30天", "day_offset": 30, "channel": "sms"},
                {"title": "出院7天", "day_offset": 7, "questionnaire": questionnaire.pk},
            ],
        ),
    )

    assert response.status_code == 302
    plan = Plan.objects.get()
    assert plan.rules == {
        "diagnosis_prefixes": ["I21", "I25", "I20"],
        "surgery_codes": ["36.06"],
        "min_age": 18,
    }
    assert plan.created_by == hospital.dave
    assert list(plan.steps.values_list("order", "title", "channel")) == [
        (1, "出院7天", "phone"),
        (2, "出院30天", "sms"),
    ]
    assert plan.steps.get(order=1).questionnaire == questionnaire
    assert response.url == f"/followup/plans/{plan.pk}/"


def test_bad_rules_are_reported_with_the_reason(client, hospital):
    client.force_login(hospital.dave)

    response = client.post(
        "/followup/plans/new/",
        plan_data(
            hospital,
            [{"title": "7天", "day_offset": 7}],
            diagnosis_prefixes="I21, 心梗",
            min_age="70",
            max_age="18",
        ),
    )

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "心梗" in str(errors["diagnosis_prefixes"])
    assert errors["max_age"]
    assert not Plan.objects.exists()


def test_a_plan_needs_a_step(client, hospital):
    client.force_login(hospital.dave)

    response = client.post("/followup/plans/new/", plan_data(hospital, []))

    assert response.status_code == 200
    assert response.context["formset"].non_form_errors()


def test_editing_steps_reorders_them_by_day(client, hospital):
    plan = make_plan(hospital.cardio)  # day 3 (order 1), day 30 (order 2)
    first, second = plan.steps.order_by("order")
    client.force_login(hospital.dave)
    data = plan_data(
        hospital,
        [
            {"id": first.pk, "title": "出院60天", "day_offset": 60},
            {"id": second.pk, "title": "出院30天", "day_offset": 30},
            {"title": "出院7天", "day_offset": 7},
        ],
        initial=2,
        name=plan.name,
    )
    data["steps-0-plan"] = data["steps-1-plan"] = str(plan.pk)

    response = client.post(f"/followup/plans/{plan.pk}/edit/", data)

    assert response.status_code == 302
    assert list(plan.steps.order_by("order").values_list("order", "day_offset")) == [
        (1, 7),
        (2, 30),
        (3, 60),
    ]


def test_a_step_with_tasks_cannot_be_deleted(client, hospital):
    plan = make_plan(hospital.cardio)
    services.enrol(plan, testing.make_patient(), anchor_date=timezone.localdate())
    first, second = plan.steps.order_by("order")
    client.force_login(hospital.dave)
    data = plan_data(
        hospital,
        [
            {"id": first.pk, "title": first.title, "day_offset": 3, "DELETE": "on"},
            {"id": second.pk, "title": second.title, "day_offset": 30},
        ],
        initial=2,
        name=plan.name,
    )

    response = client.post(f"/followup/plans/{plan.pk}/edit/", data)

    assert response.status_code == 200
    assert first.title in str(response.context["formset"].non_form_errors())
    assert PlanStep.objects.filter(pk=first.pk).exists()


def test_doctor_cannot_edit_another_departments_plan(client, hospital):
    plan = make_plan(hospital.ortho, name="骨科随访")
    client.force_login(hospital.dave)

    assert client.get(f"/followup/plans/{plan.pk}/edit/").status_code == 404
    assert client.get(f"/followup/plans/{plan.pk}/").status_code == 404


def test_nurse_cannot_create_plans(client, hospital):
    client.force_login(hospital.alice)

    response = client.post(
        "/followup/plans/new/", plan_data(hospital, [{"title": "7天", "day_offset": 7}])
    )

    assert response.status_code == 403
    assert not Plan.objects.exists()


def test_plan_list_shows_plans_of_my_departments(client, hospital):
    make_plan(hospital.cardio, name="心内随访")
    make_plan(hospital.ortho, name="骨科随访")
    client.force_login(hospital.alice)

    page = client.get("/followup/plans/").content.decode()

    assert "心内随访" in page and "骨科随访" not in page


def test_supervisor_edits_team_members(client, hospital):
    team = make_team(hospital.cardio, members=[hospital.alice])
    client.force_login(hospital.carol)

    response = client.post(
        f"/followup/teams/{team.pk}/edit/",
        {
            "name": "心内随访一组",
            "department": hospital.cardio.pk,
            "supervisor": hospital.carol.pk,
            "members": [hospital.alice.pk, hospital.carol.pk],
        },
    )

    assert response.status_code == 302
    team.refresh_from_db()
    assert set(team.members.all()) == {hospital.alice, hospital.carol}
    assert team.supervisor == hospital.carol


def test_team_member_of_another_department_is_refused(client, hospital):
    team = make_team(hospital.cardio)
    outsider = testing.make_user("olga", departments=[hospital.ortho])
    client.force_login(hospital.frank)

    response = client.post(
        f"/followup/teams/{team.pk}/edit/",
        {"name": team.name, "department": hospital.cardio.pk, "members": [outsider.pk]},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["members"]
    assert not Team.objects.get(pk=team.pk).members.exists()
