"""Follow-up screens: workspace, task page, task list and export, enrolment, notifications."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from careloop.audit.models import AuditAction, AuditEvent
from careloop.core import testing
from careloop.followup import services
from careloop.followup.choices import EnrollmentStatus, NotificationKind, TaskStatus
from careloop.followup.models import Enrollment, FollowUpRecord, Notification, Task
from careloop.followup.tests.factories import (
    days,
    make_discharge,
    make_plan,
    make_questionnaire,
    make_task,
)

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    return client


def today():
    return timezone.localdate()


# --- workspace -----------------------------------------------------------------------------------


def test_workspace_shows_my_due_and_overdue_tasks_most_urgent_first(client, hospital):
    due = make_task(hospital.cardio, assignee=hospital.alice)
    overdue = make_task(hospital.cardio, assignee=hospital.alice, discharged_on=today() - days(5))
    Task.objects.filter(pk=overdue.pk).update(deadline=today() - days(1))
    pending = make_task(hospital.cardio, assignee=hospital.alice, discharged_on=today())
    carols = make_task(hospital.cardio, assignee=hospital.carol)

    response = login(client, hospital.alice).get("/followup/")

    assert response.status_code == 200
    listed = [task.pk for task in response.context["tasks"]]
    assert listed == [overdue.pk, due.pk]
    assert pending.pk not in listed and carols.pk not in listed
    counts = response.context["counts"]
    assert (counts.due, counts.overdue) == (1, 1)


def test_workspace_hides_retries_until_their_time_and_shows_due_call_backs(client, hospital):
    now = timezone.now()
    waiting = make_task(hospital.cardio, assignee=hospital.alice)
    services.record_outcome(waiting, outcome="no_answer", acting_user=hospital.alice)
    callback = make_task(hospital.cardio, assignee=hospital.alice, discharged_on=today())
    services.record_outcome(
        callback,
        outcome="call_back",
        callback_at=now + dt.timedelta(minutes=30),
        acting_user=hospital.alice,
    )
    Task.objects.filter(pk=callback.pk).update(next_attempt_at=now - dt.timedelta(minutes=1))

    response = login(client, hospital.alice).get("/followup/")

    assert [task.pk for task in response.context["tasks"]] == [callback.pk]
    counts = response.context["counts"]
    assert (counts.waiting, counts.callbacks) == (1, 1)


def test_workspace_offers_pool_tasks_of_my_department_to_claim(client, hospital):
    mine = make_task(hospital.cardio)
    make_task(hospital.ortho)

    response = login(client, hospital.alice).get("/followup/")

    assert [task.pk for task in response.context["pool"]] == [mine.pk]
    assert f"/followup/tasks/{mine.pk}/claim/" in response.content.decode()


def test_workspace_lists_unread_notifications_and_marks_them_read(client, hospital):
    task = make_task(hospital.cardio, assignee=hospital.alice)
    notice = Notification.objects.create(
        user=hospital.alice, kind=NotificationKind.OVERDUE, task=task, text="任务已逾期"
    )
    Notification.objects.create(
        user=hospital.carol, kind=NotificationKind.OVERDUE, task=task, text="给卡罗"
    )
    login(client, hospital.alice)

    page = client.get("/followup/").content.decode()
    assert "任务已逾期" in page and "给卡罗" not in page

    response = client.post(f"/followup/notifications/{notice.pk}/read/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    notice.refresh_from_db()
    assert notice.read_at is not None
    assert "任务已逾期" not in response.content.decode()


# --- the task page -------------------------------------------------------------------------------


def test_task_page_shows_the_patient_masked_the_script_and_is_audited(client, hospital):
    plan = make_plan(
        hospital.cardio, steps=[{"day_offset": 3, "title": "3天"}], script="您好,我是心内科随访护士"
    )
    task = make_task(hospital.cardio, plan=plan, assignee=hospital.alice)
    phone = task.patient.phone

    page = login(client, hospital.alice).get(f"/followup/tasks/{task.pk}/").content.decode()

    assert f"{phone[:3]}****{phone[-4:]}" in page
    assert phone not in page
    assert "您好,我是心内科随访护士" in page
    assert f"/patients/{task.patient_id}/" in page
    assert AuditEvent.objects.filter(
        action=AuditAction.VIEW_PATIENT, user=hospital.alice, patient=task.patient
    ).exists()


def test_task_page_records_an_outcome(client, hospital):
    task = make_task(hospital.cardio, assignee=hospital.alice)

    response = login(client, hospital.alice).post(
        f"/followup/tasks/{task.pk}/", {"outcome": "busy", "note": "占线"}
    )

    assert response.status_code == 302
    assert response.url == "/followup/"
    record = FollowUpRecord.objects.get(task=task)
    assert (record.outcome, record.note, record.recorded_by) == ("busy", "占线", hospital.alice)
    task.refresh_from_db()
    assert task.attempts == 1 and task.next_attempt_at is not None


def test_call_back_without_a_time_is_refused_on_the_page(client, hospital):
    task = make_task(hospital.cardio, assignee=hospital.alice)

    response = login(client, hospital.alice).post(
        f"/followup/tasks/{task.pk}/", {"outcome": "call_back"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["callback_at"]
    assert not FollowUpRecord.objects.exists()


def test_call_back_time_is_read_in_shanghai_time(client, hospital):
    task = make_task(hospital.cardio, assignee=hospital.alice)
    tomorrow = today() + days(1)

    login(client, hospital.alice).post(
        f"/followup/tasks/{task.pk}/",
        {"outcome": "call_back", "callback_at": f"{tomorrow.isoformat()}T15:30"},
    )

    task.refresh_from_db()
    local = timezone.localtime(task.next_attempt_at)
    assert (local.date(), local.hour, local.minute) == (tomorrow, 15, 30)


def questionnaire_task(hospital):
    plan = make_plan(
        hospital.cardio,
        steps=[{"day_offset": 3, "title": "3天", "questionnaire": make_questionnaire()}],
    )
    return make_task(hospital.cardio, plan=plan, assignee=hospital.alice)


def test_task_page_shows_the_questionnaire_of_the_step(client, hospital):
    task = questionnaire_task(hospital)

    page = login(client, hospital.alice).get(f"/followup/tasks/{task.pk}/").content.decode()

    assert 'name="q_temperature"' in page
    assert "是否按时服药" in page


def test_bad_answers_are_shown_by_question_and_the_others_stay_filled_in(client, hospital):
    task = questionnaire_task(hospital)

    response = login(client, hospital.alice).post(
        f"/followup/tasks/{task.pk}/",
        {"outcome": "reached", "q_temperature": "50", "q_medication": "yes", "q_remarks": "头晕"},
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="error-temperature"' in page
    assert 'id="error-medication"' not in page
    assert "头晕" in page
    assert 'value="50"' in page
    task.refresh_from_db()
    assert task.status == TaskStatus.DUE
    assert not FollowUpRecord.objects.exists()


def test_reached_with_answers_completes_the_task_and_saves_the_response(client, hospital):
    task = questionnaire_task(hospital)

    response = login(client, hospital.alice).post(
        f"/followup/tasks/{task.pk}/",
        {"outcome": "reached", "q_temperature": "36.8", "q_medication": "no", "q_remarks": ""},
    )

    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE
    record = task.records.get()
    assert record.response.answers == {"temperature": 36.8, "medication": False}


def test_leader_reads_the_task_but_cannot_record(client, hospital):
    task = questionnaire_task(hospital)
    login(client, hospital.erin)

    page = client.get(f"/followup/tasks/{task.pk}/")
    assert page.status_code == 200
    assert 'id="outcome-form"' not in page.content.decode()

    assert client.post(f"/followup/tasks/{task.pk}/", {"outcome": "reached"}).status_code == 403
    assert not FollowUpRecord.objects.exists()


def test_a_task_of_another_department_is_404(client, hospital):
    task = make_task(hospital.ortho)
    login(client, hospital.alice)

    assert client.get(f"/followup/tasks/{task.pk}/").status_code == 404
    assert client.post(f"/followup/tasks/{task.pk}/", {"outcome": "busy"}).status_code == 404


def test_finished_task_page_shows_the_answers_read_only(client, hospital):
    task = questionnaire_task(hospital)
    services.record_outcome(
        task,
        outcome="reached",
        answers={"temperature": "38.6", "medication": "yes"},
        acting_user=hospital.alice,
    )

    page = login(client, hospital.alice).get(f"/followup/tasks/{task.pk}/").content.decode()

    assert 'id="outcome-form"' not in page
    assert 'value="38.6"' in page


def test_claim_from_the_task_page_and_a_second_claim_is_refused(client, hospital):
    task = make_task(hospital.cardio)
    nurse_c = testing.make_user("cindy", departments=[hospital.cardio])

    assert (
        login(client, hospital.alice).post(f"/followup/tasks/{task.pk}/claim/").status_code == 302
    )
    client.force_login(nurse_c)
    response = client.post(f"/followup/tasks/{task.pk}/claim/", follow=True)

    task.refresh_from_db()
    assert task.assignee == hospital.alice
    assert [m.level_tag for m in response.context["messages"]][-1] == "error"


def test_supervisor_reassigns_from_the_task_page(client, hospital):
    task = make_task(hospital.cardio, assignee=hospital.alice)

    login(client, hospital.carol).post(
        f"/followup/tasks/{task.pk}/assign/", {"assignee": hospital.carol.pk}
    )

    task.refresh_from_db()
    assert task.assignee == hospital.carol


# --- the task list -------------------------------------------------------------------------------


def test_task_list_filters_failures_for_a_second_round(client, hospital):
    failed = make_task(hospital.cardio, assignee=hospital.alice)
    services.record_outcome(failed, outcome="wrong_number", acting_user=hospital.alice)
    make_task(hospital.cardio, assignee=hospital.alice)

    response = login(client, hospital.alice).get("/followup/tasks/", {"status": "failures"})

    assert [task.pk for task in response.context["page"]] == [failed.pk]


def test_task_list_filters_by_assignee_and_pool(client, hospital):
    mine = make_task(hospital.cardio, assignee=hospital.alice)
    pool = make_task(hospital.cardio)
    login(client, hospital.carol)

    by_alice = client.get("/followup/tasks/", {"assignee": hospital.alice.pk})
    in_pool = client.get("/followup/tasks/", {"assignee": "none"})

    assert [t.pk for t in by_alice.context["page"]] == [mine.pk]
    assert [t.pk for t in in_pool.context["page"]] == [pool.pk]


def test_task_list_shows_only_my_departments(client, hospital):
    mine = make_task(hospital.cardio)
    make_task(hospital.ortho)

    response = login(client, hospital.alice).get("/followup/tasks/")

    assert [task.pk for task in response.context["page"]] == [mine.pk]


def test_invalid_filter_is_reported_not_ignored(client, hospital):
    make_task(hospital.cardio)

    response = login(client, hospital.alice).get("/followup/tasks/", {"date_from": "不是日期"})

    assert response.context["form"].errors["date_from"]
    assert list(response.context["page"]) == []


def test_failure_export_is_an_audited_xlsx_of_the_visible_failures(client, hospital):
    failed = make_task(hospital.cardio, assignee=hospital.alice)
    services.record_outcome(failed, outcome="wrong_number", note="空号", acting_user=hospital.alice)
    make_task(hospital.cardio)
    other = make_task(hospital.ortho)
    services.record_outcome(other, outcome="wrong_number", acting_user=hospital.bob)

    response = login(client, hospital.alice).get("/followup/tasks/export/", {"status": "failures"})

    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 2  # header + the one cardiology failure
    assert rows[1][0] == failed.pk
    assert rows[1][2] == failed.patient.phone  # nurses may reveal numbers; the export is audited
    assert "空号" in rows[1]
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert event.detail == {"list": "followup_failures", "rows": 1, "full_phone": True}


# --- enrolment -----------------------------------------------------------------------------------


def test_enrol_page_enrols_from_an_encounter_with_its_discharge_date(client, hospital):
    plan = make_plan(hospital.cardio)
    stay = make_discharge(hospital.cardio, discharged_on=today() - days(2))

    response = login(client, hospital.alice).post(
        f"/followup/enrol/{stay.patient_id}/", {"plan": plan.pk, "encounter": stay.pk}
    )

    assert response.status_code == 302
    enrollment = Enrollment.objects.get(plan=plan)
    assert enrollment.encounter == stay
    assert enrollment.anchor_date == today() - days(2)
    assert enrollment.enrolled_by == hospital.alice


def test_enrol_page_reports_a_refusal(client, hospital):
    plan = make_plan(hospital.cardio)
    stay = make_discharge(
        hospital.cardio, discharged_on=today(), patient=testing.make_patient(do_not_contact=True)
    )

    response = login(client, hospital.alice).post(
        f"/followup/enrol/{stay.patient_id}/", {"plan": plan.pk, "anchor_date": today().isoformat()}
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert not Enrollment.objects.exists()


def test_enrol_page_offers_only_plans_of_my_departments(client, hospital):
    mine = make_plan(hospital.cardio)
    theirs = make_plan(hospital.ortho, name="骨科随访")
    stay = make_discharge(hospital.cardio, discharged_on=today())
    login(client, hospital.alice)

    response = client.post(
        f"/followup/enrol/{stay.patient_id}/",
        {"plan": theirs.pk, "anchor_date": today().isoformat()},
    )

    assert response.context["form"].errors["plan"]
    assert list(response.context["form"].fields["plan"].queryset) == [mine]


def test_withdraw_from_the_enrol_page(client, hospital):
    task = make_task(hospital.cardio)

    response = login(client, hospital.carol).post(
        f"/followup/enrollments/{task.enrollment_id}/withdraw/", {"reason": "患者转院"}
    )

    assert response.status_code == 302
    assert response.url == f"/followup/enrol/{task.patient_id}/"
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert task.enrollment.status == EnrollmentStatus.WITHDRAWN


def test_withdraw_ignores_a_next_url_to_another_site(client, hospital):
    task = make_task(hospital.cardio)

    response = login(client, hospital.carol).post(
        f"/followup/enrollments/{task.enrollment_id}/withdraw/",
        {"reason": "患者转院", "next": "https://evil.example/"},
    )

    assert response.url == f"/followup/enrol/{task.patient_id}/"
