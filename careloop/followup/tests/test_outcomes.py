"""Recording outcomes (F2.3, F2.4): retries, call-backs, refusals, deaths, questionnaires."""

from __future__ import annotations

import datetime as dt

import pytest

from careloop.core import testing
from careloop.followup import services
from careloop.followup.choices import EnrollmentStatus, TaskStatus
from careloop.followup.models import FollowUpRecord, Task
from careloop.followup.tests.factories import (
    NOW,
    TODAY,
    days,
    make_plan,
    make_questionnaire,
)
from careloop.surveys.models import Response
from careloop.surveys.schema import AnswerError

pytestmark = pytest.mark.django_db


def enrol_due(hospital, **plan_overrides):
    """A patient enrolled three days ago on a day-3 + day-30 plan: the first task is due."""
    plan = make_plan(hospital.cardio, **plan_overrides)
    patient = testing.make_patient()
    enrollment = services.enrol(plan, patient, anchor_date=TODAY - days(3), now=NOW)
    first, second = enrollment.tasks.order_by("target_date")
    return enrollment, first, second


def test_no_answer_schedules_a_retry_after_the_plans_interval(hospital):
    _, task, _ = enrol_due(hospital, max_attempts=3, retry_interval_hours=4)

    services.record_outcome(task, outcome="no_answer", acting_user=hospital.alice, now=NOW)

    assert task.status == TaskStatus.DUE
    assert task.attempts == 1
    assert task.next_attempt_at == NOW + dt.timedelta(hours=4)


def test_task_becomes_unreached_when_attempts_are_used_up(hospital):
    enrollment, task, _ = enrol_due(hospital, max_attempts=3, retry_interval_hours=4)

    for n, outcome in enumerate(["no_answer", "busy", "no_answer"]):
        services.record_outcome(
            task,
            outcome=outcome,
            acting_user=hospital.alice,
            now=NOW + dt.timedelta(hours=4 * n),
        )

    assert task.status == TaskStatus.UNREACHED
    assert task.attempts == 3
    assert task.next_attempt_at is None
    assert "3" in task.end_reason
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.ACTIVE  # the day-30 step is still to come


def test_call_back_keeps_the_task_open_until_the_agreed_time(hospital):
    _, task, _ = enrol_due(hospital, max_attempts=1)
    when = NOW + dt.timedelta(hours=6)

    record = services.record_outcome(
        task, outcome="call_back", callback_at=when, acting_user=hospital.alice, now=NOW
    )

    assert task.status == TaskStatus.DUE
    assert task.next_attempt_at == when
    assert record.callback_at == when


def test_call_back_needs_a_future_time(hospital):
    _, task, _ = enrol_due(hospital)

    with pytest.raises(services.FollowupError):
        services.record_outcome(task, outcome="call_back", acting_user=hospital.alice, now=NOW)
    with pytest.raises(services.FollowupError):
        services.record_outcome(
            task,
            outcome="call_back",
            callback_at=NOW - dt.timedelta(minutes=1),
            acting_user=hospital.alice,
            now=NOW,
        )
    assert not FollowUpRecord.objects.exists()


def test_wrong_number_makes_the_task_unreached_with_the_reason(hospital):
    _, task, _ = enrol_due(hospital)

    services.record_outcome(
        task, outcome="wrong_number", note="号码已停机", acting_user=hospital.alice, now=NOW
    )

    assert task.status == TaskStatus.UNREACHED
    assert task.end_reason == "号码已停机"


def test_refusal_loses_the_task_and_ends_the_enrolment_as_lost(hospital):
    enrollment, task, later = enrol_due(hospital)

    services.record_outcome(
        task, outcome="refused", note="不需要随访", acting_user=hospital.alice, now=NOW
    )

    assert task.status == TaskStatus.LOST
    later.refresh_from_db()
    assert later.status == TaskStatus.CANCELLED
    assert later.end_reason == "不需要随访"
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.LOST


def test_deceased_flags_the_patient_and_cancels_all_their_open_tasks(hospital):
    enrollment, task, _ = enrol_due(hospital)
    other_plan = make_plan(hospital.cardio, name="高血压随访")
    other = services.enrol(other_plan, task.patient, anchor_date=TODAY, now=NOW)

    services.record_outcome(task, outcome="deceased", acting_user=hospital.alice, now=NOW)

    task.patient.refresh_from_db()
    assert task.patient.is_deceased
    assert task.status == TaskStatus.CANCELLED
    assert not Task.objects.filter(patient=task.patient, status__in=["pending", "due"]).exists()
    enrollment.refresh_from_db()
    other.refresh_from_db()
    assert enrollment.status == other.status == EnrollmentStatus.WITHDRAWN


def test_reached_saves_the_questionnaire_response_and_completes_the_task(hospital):
    questionnaire = make_questionnaire()
    _, task, _ = enrol_due(
        hospital,
        steps=[
            {"day_offset": 3, "title": "3天", "questionnaire": questionnaire},
            {"day_offset": 30, "title": "30天"},
        ],
    )

    record = services.record_outcome(
        task,
        outcome="reached",
        answers={"temperature": "37.2", "medication": "yes", "remarks": ""},
        note="恢复良好",
        acting_user=hospital.alice,
        now=NOW,
    )

    assert task.status == TaskStatus.DONE
    assert task.completed_at == NOW
    response = record.response
    assert response.answers == {"temperature": 37.2, "medication": True}
    assert response.patient == task.patient
    assert response.channel == "agent"
    assert response.submitted_by == hospital.alice


def test_bad_answers_are_reported_by_question_and_nothing_is_saved(hospital):
    questionnaire = make_questionnaire()
    _, task, _ = enrol_due(
        hospital,
        steps=[
            {"day_offset": 3, "title": "3天", "questionnaire": questionnaire},
            {"day_offset": 30, "title": "30天"},
        ],
    )

    with pytest.raises(AnswerError) as error:
        services.record_outcome(
            task,
            outcome="reached",
            answers={"temperature": "50", "medication": None},
            acting_user=hospital.alice,
            now=NOW,
        )

    assert set(error.value.errors) == {"temperature", "medication"}
    task.refresh_from_db()
    assert task.status == TaskStatus.DUE
    assert task.attempts == 0
    assert not FollowUpRecord.objects.exists()
    assert not Response.objects.exists()


def test_last_task_done_completes_the_enrolment(hospital):
    enrollment, first, second = enrol_due(hospital)

    services.record_outcome(first, outcome="reached", acting_user=hospital.alice, now=NOW)
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.ACTIVE

    services.record_outcome(
        second, outcome="wrong_number", acting_user=hospital.alice, now=NOW + days(27)
    )
    enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.COMPLETED
    assert enrollment.ended_at == NOW + days(27)


def test_a_finished_task_takes_no_more_outcomes(hospital):
    _, task, _ = enrol_due(hospital)
    services.record_outcome(task, outcome="reached", acting_user=hospital.alice, now=NOW)

    with pytest.raises(services.FollowupError):
        services.record_outcome(task, outcome="no_answer", acting_user=hospital.alice, now=NOW)
    assert task.records.count() == 1


def test_recording_on_a_pool_task_gives_it_to_the_nurse(hospital):
    _, task, _ = enrol_due(hospital)
    assert task.assignee is None

    services.record_outcome(task, outcome="busy", acting_user=hospital.alice, now=NOW)

    assert task.assignee == hospital.alice
