import datetime as dt

import pytest

from careloop.alerts import services
from careloop.alerts.choices import AdviceChannel, AlertState, Severity
from careloop.alerts.models import Alert, AlertRule, Evaluation
from careloop.alerts.services import AlertError, evaluate_response, matches
from careloop.alerts.tests.factories import (
    DEFINITION,
    NOW,
    answered_task,
    make_alert,
    make_questionnaire,
    make_rule,
    response_for,
)
from careloop.core import testing
from careloop.followup.models import Notification

Q = {q["key"]: q for q in DEFINITION["questions"]}


@pytest.mark.parametrize(
    ("key", "operator", "expected", "answer", "result"),
    [
        ("temperature", "gt", 38.5, 38.6, True),
        ("temperature", "gt", 38.5, 38.5, False),
        ("temperature", "gte", 38.5, 38.5, True),
        ("temperature", "lt", 35.5, 35.2, True),
        ("temperature", "lte", 35.5, 35.6, False),
        ("temperature", "eq", 37, 37.0, True),
        ("temperature", "ne", 37, 37.0, False),
        ("temperature", "in", [39, 40], 40, True),
        ("pain", "gte", 7, 7, True),
        ("pain", "gte", 7, 6, False),
        ("wound_bleeding", "eq", True, True, True),
        ("wound_bleeding", "eq", "yes", True, True),
        ("wound_bleeding", "ne", True, False, True),
        ("mood", "eq", "low", "low", True),
        ("mood", "in", ["low", "bad"], "good", False),
        ("bleeding", "contains", "black_stool", ["gums", "black_stool"], True),
        ("bleeding", "eq", "black_stool", ["gums"], False),
        ("bleeding", "ne", "black_stool", ["gums"], True),
        ("bleeding", "in", ["black_stool", "x"], ["black_stool"], True),
        ("note", "contains", "胸痛", "夜里胸痛", True),
        ("note", "contains", "胸痛", "无", False),
        ("visit", "lt", "2026-03-01", "2026-02-20", True),
        ("temperature", "gt", 38.5, None, False),
        ("temperature", "gt", "not a number", 39, False),
    ],
)
def test_rule_operators(key, operator, expected, answer, result):
    assert matches(operator, expected, Q[key], answer) is result


def test_rule_raises_an_alert_for_the_attending_doctor(hospital):
    questionnaire = make_questionnaire(hospital.cardio)
    make_rule(questionnaire, severity=Severity.CRITICAL, ack_hours=2)
    task, response = answered_task(
        hospital.cardio,
        {"temperature": 39.2, "wound_bleeding": False},
        doctor=hospital.dave,
        nurse=hospital.alice,
        questionnaire=questionnaire,
    )
    (alert,) = evaluate_response(response, now=NOW)
    assert alert.severity == Severity.CRITICAL
    assert alert.task == task
    assert alert.department == hospital.cardio
    assert alert.assigned_doctor == hospital.dave
    assert alert.state == AlertState.OPEN
    assert alert.message == "发热：39.2 °C"
    assert alert.question_text == "体温是多少？"
    assert alert.deadline == NOW + dt.timedelta(hours=2)
    notice = Notification.objects.get(user=hospital.dave)
    assert notice.kind == services.KIND_ALERT
    assert notice.task == task


def test_answer_under_threshold_raises_nothing(hospital):
    make_rule()
    _task, response = answered_task(hospital.cardio, {"temperature": 38.5, "wound_bleeding": False})
    assert evaluate_response(response, now=NOW) == []
    assert Evaluation.objects.get(response=response).alert_count == 0


def test_option_marked_abnormal_raises_without_a_rule(hospital):
    _task, response = answered_task(
        hospital.cardio, {"temperature": 36.5, "wound_bleeding": True, "mood": "low"}
    )
    alerts = evaluate_response(response, now=NOW)
    assert [(a.key, a.rule, a.answer_text) for a in alerts] == [
        ("question:wound_bleeding", None, "有"),
        ("question:mood", None, "低落"),
    ]
    assert {a.severity for a in alerts} == {services.FLAG_SEVERITY}


def test_without_attending_doctor_the_department_doctors_are_notified(hospital):
    other_doctor = testing.make_user("grace", role="doctor", departments=[hospital.cardio])
    alert = make_alert(hospital.cardio)
    assert alert.assigned_doctor is None
    notified = set(Notification.objects.values_list("user__username", flat=True))
    assert notified == {"dave", other_doctor.username}


def test_a_matching_rule_replaces_the_questionnaires_own_flag(hospital):
    make_rule(key="wound_bleeding", operator="eq", value=True, severity=Severity.CRITICAL)
    _task, response = answered_task(hospital.cardio, {"temperature": 36.5, "wound_bleeding": True})
    (alert,) = evaluate_response(response, now=NOW)
    assert alert.severity == Severity.CRITICAL and alert.rule is not None


def test_inactive_rules_and_other_questionnaires_rules_are_ignored(hospital):
    make_rule(questionnaire=make_questionnaire(), value=37)
    rule = make_rule(value=37)
    rule.is_active = False
    rule.save()
    _task, response = answered_task(hospital.cardio, {"temperature": 38, "wound_bleeding": False})
    assert evaluate_response(response, now=NOW) == []


def test_re_evaluation_is_idempotent(hospital):
    make_rule()
    _task, response = answered_task(hospital.cardio, {"temperature": 39, "wound_bleeding": True})
    first = evaluate_response(response, now=NOW)
    again = evaluate_response(response, now=NOW + dt.timedelta(minutes=5))
    assert len(first) == 2
    assert [a.pk for a in again] == [a.pk for a in first]
    assert Alert.objects.count() == 2
    assert Notification.objects.filter(user=hospital.dave).count() == 2


def test_response_outside_a_task_takes_the_questionnaires_department(hospital):
    patient = testing.make_patient()
    testing.make_encounter(patient, hospital.cardio, attending_doctor=hospital.dave)
    response = response_for(
        patient,
        {"temperature": 36.5, "wound_bleeding": True},
        questionnaire=make_questionnaire(hospital.cardio),
    )
    (alert,) = evaluate_response(response, now=NOW)
    assert alert.task is None
    assert alert.department == hospital.cardio
    assert alert.assigned_doctor == hospital.dave


def test_job_evaluates_new_responses_once(hospital):
    make_rule()
    patient = testing.make_patient()
    testing.make_encounter(patient, hospital.cardio)
    fever = response_for(patient, {"temperature": 39, "wound_bleeding": False})
    normal = response_for(patient, {"temperature": 36.6, "wound_bleeding": False})
    old = response_for(
        patient, {"temperature": 40, "wound_bleeding": False}, now=NOW - dt.timedelta(days=30)
    )
    assert services.evaluate_pending(now=NOW) == 2
    assert services.evaluate_pending(now=NOW + dt.timedelta(minutes=1)) == 0
    assert Alert.objects.get().response == fever
    assert Evaluation.objects.filter(response__in=[fever, normal]).count() == 2
    assert not Evaluation.objects.filter(response=old).exists()


def test_job_skips_responses_already_evaluated_by_record_outcome(hospital):
    make_rule()
    _task, response = answered_task(hospital.cardio, {"temperature": 39, "wound_bleeding": False})
    evaluate_response(response, now=NOW)
    assert services.evaluate_pending(now=NOW + dt.timedelta(minutes=1)) == 0
    assert Alert.objects.count() == 1


def test_acknowledge_then_advise_then_close_keeps_every_timestamp(hospital):
    alert = make_alert(hospital.cardio, doctor=hospital.dave, nurse=hospital.alice)
    t1, t2, t3 = (NOW + dt.timedelta(minutes=m) for m in (10, 20, 30))
    services.acknowledge(alert, acting_user=hospital.dave, now=t1)
    assert (alert.state, alert.acknowledged_at, alert.acknowledged_by) == (
        AlertState.ACKNOWLEDGED,
        t1,
        hospital.dave,
    )
    services.advise(
        alert,
        text="请明天来门诊换药",
        channel=AdviceChannel.CALL,
        acting_user=hospital.dave,
        now=t2,
    )
    assert (alert.state, alert.advised_at, alert.acknowledged_at) == (AlertState.ADVISED, t2, t1)
    services.close(alert, acting_user=hospital.dave, now=t3)
    assert (alert.state, alert.closed_at, alert.closed_by) == (AlertState.CLOSED, t3, hospital.dave)
    assert alert.raised_at == NOW
    with pytest.raises(AlertError):
        services.acknowledge(alert, acting_user=hospital.dave)
    with pytest.raises(AlertError):
        services.close(alert, acting_user=hospital.dave)


def test_advice_creates_a_call_task_for_the_nurse_who_called(hospital):
    alert = make_alert(hospital.cardio, doctor=hospital.dave, nurse=hospital.alice)
    advice = services.advise(
        alert,
        text="请明天来门诊换药",
        channel=AdviceChannel.CALL,
        acting_user=hospital.dave,
        now=NOW,
    )
    task = advice.task
    assert task is not None and task.pk != alert.task_id
    assert task.patient == alert.patient
    assert task.department == hospital.cardio
    assert task.channel == "phone"
    assert task.status == "due"
    assert task.assignee == hospital.alice
    assert task.plan.name == services.ADVICE_PLAN_NAME
    assert list(task.advices.all()) == [advice]
    assert alert.acknowledged_at == NOW  # advising an open alert acknowledges it


def test_advice_needs_text(hospital):
    alert = make_alert(hospital.cardio)
    with pytest.raises(AlertError):
        services.advise(alert, text=" ", channel=AdviceChannel.SMS, acting_user=hospital.dave)
    assert alert.state == AlertState.OPEN


def test_closing_without_advice_needs_a_note(hospital):
    alert = make_alert(hospital.cardio)
    with pytest.raises(AlertError):
        services.close(alert, acting_user=hospital.dave, now=NOW)
    services.close(alert, note="误报：患者已在门诊处理", acting_user=hospital.dave, now=NOW)
    assert alert.state == AlertState.CLOSED and alert.close_note


def test_escalation_after_the_deadline_exactly_once_to_the_department_head(hospital):
    hospital.cardio.head = hospital.dave
    hospital.cardio.save()
    make_rule(ack_hours=4, escalation_hours=1)
    _task, response = answered_task(hospital.cardio, {"temperature": 39, "wound_bleeding": False})
    (alert,) = evaluate_response(response, now=NOW)
    Notification.objects.all().delete()
    assert services.escalate_overdue(now=NOW + dt.timedelta(hours=4, minutes=59)) == 0
    assert services.escalate_overdue(now=NOW + dt.timedelta(hours=5)) == 1
    assert services.escalate_overdue(now=NOW + dt.timedelta(hours=6)) == 0
    alert.refresh_from_db()
    assert alert.escalated_at == NOW + dt.timedelta(hours=5)
    assert alert.escalated_to == hospital.dave
    notice = Notification.objects.get()
    assert (notice.user, notice.kind) == (hospital.dave, services.KIND_ESCALATED)


def test_escalation_falls_back_to_the_supervisors(hospital):
    alert = make_alert(hospital.cardio)
    Notification.objects.all().delete()
    assert services.escalate_overdue(now=alert.escalate_at) == 1
    alert.refresh_from_db()
    assert alert.escalated_to == hospital.carol
    assert list(Notification.objects.values_list("user__username", flat=True)) == ["carol"]


def test_acknowledged_alert_is_not_escalated(hospital):
    alert = make_alert(hospital.cardio)
    services.acknowledge(alert, acting_user=hospital.dave, now=NOW)
    assert services.escalate_overdue(now=NOW + dt.timedelta(days=3)) == 0


def test_default_rules_are_seeded_once(hospital):
    from careloop.surveys.samples import ensure_sample_questionnaires

    ensure_sample_questionnaires()
    created = services.ensure_default_rules()
    assert created == len(services.DEFAULT_RULES)
    assert services.ensure_default_rules() == 0
    assert AlertRule.objects.count() == created
    # every rule names a question of its sample questionnaire
    for rule in AlertRule.objects.exclude(questionnaire=None):
        keys = {q["key"] for q in rule.questionnaire.current_version.definition["questions"]}
        assert rule.question_key in keys


def test_default_rules_catch_fever_and_low_glucose(hospital):
    from careloop.surveys.samples import ensure_sample_questionnaires
    from careloop.surveys.tests.factories import latest_version, make_response

    samples = ensure_sample_questionnaires()
    services.ensure_default_rules()
    patient = testing.make_patient()
    testing.make_encounter(patient, hospital.cardio)
    answers = {
        "fasting_glucose": 3.2,
        "hypo": False,
        "insulin": False,
        "oral_drugs": "always",
        "diet": "strict",
        "exercise": "none",
        "feet": False,
    }
    response = make_response(latest_version(samples["diabetes"]), patient, answers=answers)
    (alert,) = evaluate_response(response, now=NOW)
    assert alert.severity == Severity.CRITICAL
    assert alert.message == "低血糖：空腹血糖 3.2 mmol/L"
