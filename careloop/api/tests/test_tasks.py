from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from careloop.followup.models import FollowUpRecord, Task
from careloop.followup.tests.factories import make_plan, make_questionnaire, make_task

from .factories import api_client


@pytest.fixture
def questionnaire_task(hospital):
    """An open cardiology task of a step with a questionnaire and a script, assigned to alice."""
    plan = make_plan(
        hospital.cardio,
        name="心梗出院随访",
        steps=[
            {
                "day_offset": 3,
                "title": "出院3天",
                "questionnaire": make_questionnaire(),
                "script": "您好，我是心内科随访护士。",
            }
        ],
    )
    return make_task(hospital.cardio, plan=plan, assignee=hospital.alice)


def _ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


def test_list_shows_own_department_tasks_with_masked_patients(hospital, questionnaire_task):
    make_task(hospital.ortho)

    response = api_client(hospital.alice).get("/api/v1/tasks/")

    assert response.status_code == 200
    assert _ids(response) == [questionnaire_task.pk]
    row = response.json()["results"][0]
    patient = questionnaire_task.patient
    assert row["patient"]["phone"] == f"{patient.phone[:3]}****{patient.phone[-4:]}"
    assert patient.phone not in response.content.decode()
    assert row["status"] == "due"
    assert row["assignee"]["username"] == "alice"
    assert row["plan"]["name"] == "心梗出院随访"
    assert row["step"]["title"] == "出院3天"


def test_status_is_the_state_on_today_even_before_refresh(hospital):
    task = make_task(hospital.cardio)
    Task.objects.filter(pk=task.pk).update(status="pending")  # refresh_states has not run yet

    row = api_client(hospital.alice).get("/api/v1/tasks/").json()["results"][0]

    assert row["status"] == "due"


def test_filters(hospital, questionnaire_task):
    pool = make_task(hospital.cardio)
    later = make_task(hospital.cardio, discharged_on=timezone.localdate() + dt.timedelta(days=5))
    client = api_client(hospital.alice)
    today = timezone.localdate()

    def ids(**params) -> set[int]:
        response = client.get("/api/v1/tasks/", params)
        assert response.status_code == 200, response.json()
        return set(_ids(response))

    assert ids(assignee="me") == {questionnaire_task.pk}
    assert ids(assignee="none") == {pool.pk, later.pk}
    assert ids(assignee=hospital.alice.pk) == {questionnaire_task.pk}
    assert ids(status="pending") == {later.pk}
    assert ids(status="open") == {questionnaire_task.pk, pool.pk, later.pk}
    assert ids(plan=questionnaire_task.plan_id) == {questionnaire_task.pk}
    assert ids(patient=pool.patient_id) == {pool.pk}
    assert ids(department=hospital.cardio.pk) == {questionnaire_task.pk, pool.pk, later.pk}
    assert ids(channel="sms") == set()
    assert ids(due_from=today + dt.timedelta(days=1)) == {later.pk}
    assert ids(due_to=today) == {questionnaire_task.pk, pool.pk}


@pytest.mark.parametrize(
    "params, field",
    [
        ({"assignee": "bob"}, "assignee"),
        ({"status": "sleeping"}, "status"),
        ({"channel": "fax"}, "channel"),
        ({"due_from": "tomorrow"}, "due_from"),
        ({"due_from": "2026-03-10", "due_to": "2026-03-01"}, "due_to"),
        ({"plan": "x"}, "plan"),
    ],
)
def test_bad_filters_are_400(hospital, params, field):
    response = api_client(hospital.alice).get("/api/v1/tasks/", params)

    assert response.status_code == 400
    assert field in response.json()


def test_detail_has_script_questionnaire_and_attempts(hospital, questionnaire_task):
    client = api_client(hospital.alice)
    client.post(
        f"/api/v1/tasks/{questionnaire_task.pk}/outcome/",
        {"outcome": "no_answer", "note": "无人接听"},
        format="json",
    )

    response = client.get(f"/api/v1/tasks/{questionnaire_task.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["step"]["script"] == "您好，我是心内科随访护士。"
    assert body["step"]["questionnaire"] == questionnaire_task.step.questionnaire_id
    version = body["questionnaire_version"]
    assert version["number"] == 1
    assert [q["key"] for q in version["definition"]["questions"]] == [
        "temperature",
        "medication",
        "remarks",
    ]
    assert body["enrollment"]["status"] == "active"
    assert body["attempts"] == 1
    (attempt,) = body["records"]
    assert attempt["outcome"] == "no_answer"
    assert attempt["note"] == "无人接听"
    assert attempt["recorded_by"]["username"] == "alice"
    assert questionnaire_task.patient.phone not in response.content.decode()


def test_reached_with_answers_finishes_the_task(hospital, questionnaire_task):
    response = api_client(hospital.alice).post(
        f"/api/v1/tasks/{questionnaire_task.pk}/outcome/",
        {
            "outcome": "reached",
            "answers": {"temperature": 36.8, "medication": True, "remarks": "睡眠不好"},
            "note": "患者恢复良好",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    questionnaire_task.refresh_from_db()
    assert questionnaire_task.status == "done"
    assert questionnaire_task.outcome == "reached"
    record = FollowUpRecord.objects.get(task=questionnaire_task)
    assert record.recorded_by == hospital.alice
    assert record.response.answers == {
        "temperature": 36.8,
        "medication": True,
        "remarks": "睡眠不好",
    }
    body = response.json()
    assert body["record"]["id"] == record.pk
    assert body["record"]["answers"]["medication"] is True
    assert body["task"]["status"] == "done"


def test_bad_answers_are_400_per_question_and_change_nothing(hospital, questionnaire_task):
    response = api_client(hospital.alice).post(
        f"/api/v1/tasks/{questionnaire_task.pk}/outcome/",
        {"outcome": "reached", "answers": {"temperature": 55}},
        format="json",
    )

    assert response.status_code == 400
    assert set(response.json()["answers"]) == {"temperature", "medication"}
    questionnaire_task.refresh_from_db()
    assert (questionnaire_task.status, questionnaire_task.attempts) == ("due", 0)
    assert not FollowUpRecord.objects.exists()


def test_no_answer_schedules_a_retry(hospital, questionnaire_task):
    response = api_client(hospital.alice).post(
        f"/api/v1/tasks/{questionnaire_task.pk}/outcome/", {"outcome": "no_answer"}, format="json"
    )

    assert response.status_code == 201
    questionnaire_task.refresh_from_db()
    assert questionnaire_task.status == "due"
    assert questionnaire_task.attempts == 1
    assert questionnaire_task.next_attempt_at > timezone.now()


def test_call_back_needs_a_future_time(hospital, questionnaire_task):
    client = api_client(hospital.alice)
    url = f"/api/v1/tasks/{questionnaire_task.pk}/outcome/"
    past = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    later = (timezone.now() + dt.timedelta(hours=2)).replace(microsecond=0)

    missing = client.post(url, {"outcome": "call_back"}, format="json")
    in_the_past = client.post(url, {"outcome": "call_back", "callback_at": past}, format="json")
    fine = client.post(
        url, {"outcome": "call_back", "callback_at": later.isoformat()}, format="json"
    )

    assert missing.status_code == in_the_past.status_code == 400
    assert "callback_at" in missing.json() and "callback_at" in in_the_past.json()
    assert fine.status_code == 201
    questionnaire_task.refresh_from_db()
    assert questionnaire_task.next_attempt_at == later


def test_answers_without_reaching_the_patient_are_refused(hospital, questionnaire_task):
    response = api_client(hospital.alice).post(
        f"/api/v1/tasks/{questionnaire_task.pk}/outcome/",
        {"outcome": "busy", "answers": {"temperature": 37}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["non_field_errors"]


def test_unknown_outcome_is_400(hospital, questionnaire_task):
    response = api_client(hospital.alice).post(
        f"/api/v1/tasks/{questionnaire_task.pk}/outcome/", {"outcome": "maybe"}, format="json"
    )

    assert response.status_code == 400
    assert "outcome" in response.json()


def test_outcome_on_a_finished_task_is_409(hospital, questionnaire_task):
    client = api_client(hospital.alice)
    url = f"/api/v1/tasks/{questionnaire_task.pk}/outcome/"
    client.post(url, {"outcome": "wrong_number"}, format="json")

    response = client.post(url, {"outcome": "no_answer"}, format="json")

    assert response.status_code == 409
    assert FollowUpRecord.objects.count() == 1


def test_recording_an_outcome_on_a_pool_task_takes_it(hospital):
    task = make_task(hospital.cardio)

    api_client(hospital.carol).post(
        f"/api/v1/tasks/{task.pk}/outcome/", {"outcome": "busy"}, format="json"
    )

    task.refresh_from_db()
    assert task.assignee == hospital.carol


def test_claim_takes_a_pool_task_once(hospital):
    task = make_task(hospital.cardio)

    first = api_client(hospital.alice).post(f"/api/v1/tasks/{task.pk}/claim/")
    second = api_client(hospital.carol).post(f"/api/v1/tasks/{task.pk}/claim/")

    assert first.status_code == 200
    assert first.json()["assignee"]["username"] == "alice"
    assert second.status_code == 409
    task.refresh_from_db()
    assert task.assignee == hospital.alice


def test_a_finished_task_cannot_be_claimed(hospital):
    task = make_task(hospital.cardio)
    Task.objects.filter(pk=task.pk).update(status="cancelled")

    assert api_client(hospital.alice).post(f"/api/v1/tasks/{task.pk}/claim/").status_code == 409


def test_list_queries_do_not_grow_with_rows(hospital):
    client = api_client(hospital.alice)
    make_task(hospital.cardio, assignee=hospital.alice)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/tasks/").status_code == 200
        return len(queries)

    few = count()
    for _ in range(6):
        make_task(hospital.cardio, assignee=hospital.carol)

    assert count() == few


def test_detail_queries_do_not_grow_with_attempts(hospital, questionnaire_task):
    client = api_client(hospital.alice)
    url = f"/api/v1/tasks/{questionnaire_task.pk}/"

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    client.post(f"{url}outcome/", {"outcome": "busy"}, format="json")
    few = count()
    client.post(f"{url}outcome/", {"outcome": "busy"}, format="json")

    assert count() == few
