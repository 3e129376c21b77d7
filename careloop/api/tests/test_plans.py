from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from careloop.followup.models import Plan
from careloop.followup.tests.factories import make_plan, make_questionnaire, make_task, make_team
from careloop.surveys import services as surveys
from careloop.surveys.tests.factories import make_questionnaire as make_survey

from .endpoints import plan_payload
from .factories import api_client


def _names(response) -> list[str]:
    return [row["name"] for row in response.json()["results"]]


def test_list_shows_plans_of_own_departments_with_steps(hospital):
    make_plan(hospital.cardio, name="心梗出院随访")
    make_plan(hospital.ortho, name="关节置换术后随访")

    response = api_client(hospital.alice).get("/api/v1/plans/")

    assert response.status_code == 200
    assert _names(response) == ["心梗出院随访"]
    steps = response.json()["results"][0]["steps"]
    assert [(s["order"], s["day_offset"], s["title"]) for s in steps] == [
        (1, 3, "出院3天"),
        (2, 30, "出院30天"),
    ]


def test_leader_sees_every_departments_plans(hospital):
    make_plan(hospital.cardio, name="A")
    make_plan(hospital.ortho, name="B")

    assert sorted(_names(api_client(hospital.erin).get("/api/v1/plans/"))) == ["A", "B"]


def test_list_filters(hospital):
    make_plan(hospital.cardio, name="出院")
    make_plan(hospital.cardio, name="停用", is_active=False)
    make_plan(hospital.cardio, name="手术", trigger="surgery")
    make_plan(hospital.ortho, name="骨科")
    client = api_client(hospital.erin)

    assert _names(client.get("/api/v1/plans/", {"active": "false"})) == ["停用"]
    assert _names(client.get("/api/v1/plans/", {"trigger": "surgery"})) == ["手术"]
    assert _names(client.get("/api/v1/plans/", {"department": hospital.ortho.pk})) == ["骨科"]
    assert client.get("/api/v1/plans/", {"trigger": "birthday"}).status_code == 400


def test_doctor_defines_a_plan_with_steps(hospital):
    questionnaire = make_questionnaire()
    payload = plan_payload(hospital)
    payload["steps"][0]["questionnaire"] = questionnaire.pk
    payload["steps"][0]["script"] = "您好，我是心内科随访护士。"

    response = api_client(hospital.dave).post("/api/v1/plans/", payload, format="json")

    assert response.status_code == 201, response.json()
    plan = Plan.objects.get(pk=response.json()["id"])
    assert plan.created_by == hospital.dave
    assert plan.rules == {"diagnosis_prefixes": ["I21"]}
    assert [(s.order, s.channel, s.questionnaire_id) for s in plan.steps.all()] == [
        (1, "phone", questionnaire.pk),
        (2, "sms", None),
    ]
    assert response.json()["steps"][0]["script"] == "您好，我是心内科随访护士。"


def test_plan_of_another_department_is_refused(hospital):
    payload = {**plan_payload(hospital), "department": hospital.ortho.pk}

    response = api_client(hospital.dave).post("/api/v1/plans/", payload, format="json")

    assert response.status_code == 400
    assert "department" in response.json()
    assert not Plan.objects.exists()


def test_team_of_another_department_is_refused(hospital):
    team = make_team(hospital.ortho, members=[hospital.bob])
    payload = {**plan_payload(hospital), "team": team.pk, "assignment": "even"}

    response = api_client(hospital.dave).post("/api/v1/plans/", payload, format="json")

    assert response.status_code == 400
    assert "team" in response.json()


def test_bad_plans_are_400_per_field(hospital):
    client = api_client(hospital.dave)

    def errors(**changes):
        response = client.post(
            "/api/v1/plans/", {**plan_payload(hospital), **changes}, format="json"
        )
        assert response.status_code == 400
        return response.json()

    assert "steps" in errors(steps=[])
    same_order = [
        {"order": 1, "title": "a", "day_offset": 3},
        {"order": 1, "title": "b", "day_offset": 7},
    ]
    assert "steps" in errors(steps=same_order)
    assert "rules" in errors(rules={"colour": "red"})
    assert "rules" in errors(rules={"min_age": 80, "max_age": 18})
    assert "rules" in errors(rules={"diagnosis_prefixes": "I21"})
    assert "rules" in errors(rules={"surgery_codes": ["36/06"]})
    assert "rules" in errors(rules={"min_age": 200})
    assert "max_attempts" in errors(max_attempts=0)
    bad_channel = [{"order": 1, "title": "a", "day_offset": 3, "channel": "fax"}]
    assert "steps" in errors(steps=bad_channel)
    assert not Plan.objects.exists()


def test_update_changes_adds_and_removes_steps(hospital):
    plan = make_plan(
        hospital.cardio,
        steps=[
            {"day_offset": 3, "title": "3天"},
            {"day_offset": 7, "title": "7天"},
            {"day_offset": 30, "title": "30天"},
        ],
    )
    three, seven, _thirty = plan.steps.all()
    payload = {
        **plan_payload(hospital),
        "name": "心梗出院随访（新版）",
        "steps": [
            # The orders of the kept steps are swapped: the unique order must not get in the way.
            {"id": seven.pk, "order": 1, "title": "7天", "day_offset": 7},
            {"id": three.pk, "order": 2, "title": "出院第3天", "day_offset": 3},
            {"order": 3, "title": "90天", "day_offset": 90, "channel": "ivr"},
        ],
    }

    response = api_client(hospital.dave).put(f"/api/v1/plans/{plan.pk}/", payload, format="json")

    assert response.status_code == 200, response.json()
    plan.refresh_from_db()
    assert plan.name == "心梗出院随访（新版）"
    assert [(s.pk, s.order, s.title) for s in plan.steps.order_by("order")][:2] == [
        (seven.pk, 1, "7天"),
        (three.pk, 2, "出院第3天"),
    ]
    assert [s["title"] for s in response.json()["steps"]] == ["7天", "出院第3天", "90天"]
    assert plan.steps.count() == 3


def test_patch_without_steps_keeps_them(hospital):
    plan = make_plan(hospital.cardio)

    response = api_client(hospital.dave).patch(
        f"/api/v1/plans/{plan.pk}/", {"is_active": False, "max_attempts": 5}, format="json"
    )

    assert response.status_code == 200
    plan.refresh_from_db()
    assert (plan.is_active, plan.max_attempts, plan.steps.count()) == (False, 5, 2)


def test_a_step_with_tasks_cannot_be_removed(hospital):
    task = make_task(hospital.cardio)
    plan = task.plan
    payload = {**plan_payload(hospital), "steps": [{"order": 1, "title": "新", "day_offset": 5}]}

    response = api_client(hospital.dave).put(f"/api/v1/plans/{plan.pk}/", payload, format="json")

    assert response.status_code == 400
    assert "steps" in response.json()
    assert list(plan.steps.values_list("pk", flat=True)) == [task.step_id]


def test_department_cannot_change_once_patients_are_enrolled(hospital):
    plan = make_task(hospital.cardio).plan

    response = api_client(hospital.frank).patch(
        f"/api/v1/plans/{plan.pk}/", {"department": hospital.ortho.pk}, format="json"
    )

    assert response.status_code == 400
    assert "department" in response.json()


def test_step_of_another_plan_is_refused(hospital):
    plan = make_plan(hospital.cardio)
    foreign = make_plan(hospital.cardio, name="别的方案").steps.first()
    payload = {
        **plan_payload(hospital),
        "steps": [{"id": foreign.pk, "order": 1, "title": "偷来的", "day_offset": 3}],
    }

    response = api_client(hospital.dave).put(f"/api/v1/plans/{plan.pk}/", payload, format="json")

    assert response.status_code == 400
    foreign.refresh_from_db()
    assert foreign.title != "偷来的"


def test_archived_questionnaire_only_where_the_step_already_had_it(hospital):
    questionnaire = make_questionnaire()
    plan = make_plan(hospital.cardio, steps=[{"day_offset": 3, "questionnaire": questionnaire}])
    step = plan.steps.get()
    surveys.archive(questionnaire, acting_user=None)
    client = api_client(hospital.dave)
    kept = {
        "id": step.pk,
        "order": 1,
        "title": "3天",
        "day_offset": 3,
        "questionnaire": questionnaire.pk,
    }
    added = {"order": 2, "title": "7天", "day_offset": 7, "questionnaire": questionnaire.pk}

    assert (
        client.patch(f"/api/v1/plans/{plan.pk}/", {"steps": [kept]}, format="json").status_code
        == 200
    )
    refused = client.patch(f"/api/v1/plans/{plan.pk}/", {"steps": [kept, added]}, format="json")
    assert refused.status_code == 400
    assert "steps" in refused.json()


def test_list_queries_do_not_grow_with_rows(hospital):
    client = api_client(hospital.alice)
    make_plan(hospital.cardio)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/plans/").status_code == 200
        return len(queries)

    few = count()
    for n in range(6):
        make_plan(hospital.cardio, name=f"方案{n}", team=make_team(hospital.cardio))

    assert count() == few


def test_rule_codes_are_cleaned_like_the_plan_form(hospital):
    payload = {
        **plan_payload(hospital),
        "rules": {"diagnosis_prefixes": [" i21", "I25"], "surgery_codes": []},
    }

    response = api_client(hospital.dave).post("/api/v1/plans/", payload, format="json")

    assert response.status_code == 201
    assert Plan.objects.get().rules == {"diagnosis_prefixes": ["I21", "I25"]}


def test_questionnaire_of_another_department_is_refused(hospital):
    ortho = make_survey(department=hospital.ortho)
    hospital_wide = make_survey()
    payload = plan_payload(hospital)
    payload["steps"][0]["questionnaire"] = ortho.pk
    client = api_client(hospital.dave)

    refused = client.post("/api/v1/plans/", payload, format="json")
    payload["steps"][0]["questionnaire"] = hospital_wide.pk
    accepted = client.post("/api/v1/plans/", payload, format="json")

    assert refused.status_code == 400
    assert "steps" in refused.json()
    assert accepted.status_code == 201


def test_inactive_department_is_refused(hospital):
    hospital.cardio.is_active = False
    hospital.cardio.save(update_fields=["is_active"])

    response = api_client(hospital.dave).post(
        "/api/v1/plans/", plan_payload(hospital), format="json"
    )

    assert response.status_code == 400
    assert "department" in response.json()
