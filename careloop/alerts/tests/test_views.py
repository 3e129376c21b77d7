import datetime as dt

from django.utils import timezone

from careloop.alerts.choices import AlertState, Severity
from careloop.alerts.models import Alert, AlertRule
from careloop.alerts.services import evaluate_response
from careloop.alerts.tests.factories import answered_task, make_alert, make_rule, response_for
from careloop.core import testing


def test_list_shows_counts_and_the_abnormal_answer_rate(client, hospital):
    now = timezone.now()
    alert = make_alert(hospital.cardio, now=now)
    for _n in range(3):
        evaluate_response(response_for(now=now), now=now)  # normal answers, no alert
    make_alert(hospital.ortho, now=now)  # another department: not counted for alice
    client.force_login(hospital.alice)
    page = client.get("/alerts/")
    assert page.status_code == 200
    assert page.context["summary"].counts[AlertState.OPEN] == 1
    # the 3 normal responses have no department: only hospital-wide staff count them
    assert list(page.context["page"]) == [alert]
    client.force_login(hospital.erin)
    summary = client.get("/alerts/").context["summary"]
    assert (summary.with_alerts, summary.responses) == (2, 5)
    assert str(summary.rate) == "40.0"


def test_list_filters_by_severity_patient_and_view(client, hospital):
    now = timezone.now()
    make_rule(severity=Severity.CRITICAL)
    _task, response = answered_task(
        hospital.cardio, {"temperature": 39.5, "wound_bleeding": True}, now=now
    )
    critical, high = evaluate_response(response, now=now)
    other = make_alert(hospital.cardio, now=now)
    client.force_login(hospital.alice)
    assert list(client.get("/alerts/?severity=critical").context["page"]) == [critical]
    by_patient = client.get(f"/alerts/?patient={other.patient_id}").context["page"]
    assert list(by_patient) == [other]
    Alert.objects.filter(pk=high.pk).update(escalated_at=now)
    assert list(client.get("/alerts/?view=escalated").context["page"]) == [high]


def test_detail_shows_the_answers_with_the_abnormal_ones(client, hospital):
    alert = make_alert(hospital.cardio, nurse=hospital.alice)
    client.force_login(hospital.alice)
    page = client.get(f"/alerts/{alert.pk}/")
    html = page.content.decode()
    assert 'id="answer-sheet"' in html
    assert 'data-alert-keys="wound_bleeding"' in html
    assert f'href="/patients/{alert.patient_id}/"' in html
    assert "Abnormal" in html
    assert 'id="advise-form"' not in html  # nurses see, doctors advise


def test_doctor_advises_from_the_page_and_a_call_task_appears(client, hospital):
    alert = make_alert(hospital.cardio, nurse=hospital.alice)
    client.force_login(hospital.dave)
    assert 'id="advise-form"' in client.get(f"/alerts/{alert.pk}/").content.decode()
    response = client.post(
        f"/alerts/{alert.pk}/advise/", {"text": "今天到急诊处理伤口", "channel": "call"}
    )
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.state == AlertState.ADVISED
    advice = alert.advices.get()
    assert advice.by == hospital.dave and advice.task.assignee == hospital.alice
    page = client.get(f"/alerts/{alert.pk}/").content.decode()
    assert "今天到急诊处理伤口" in page
    assert f"/followup/tasks/{advice.task_id}/" in page


def test_acknowledge_and_close_from_the_page(client, hospital):
    alert = make_alert(hospital.cardio)
    client.force_login(hospital.dave)
    client.post(f"/alerts/{alert.pk}/acknowledge/")
    alert.refresh_from_db()
    assert alert.state == AlertState.ACKNOWLEDGED and alert.acknowledged_by == hospital.dave
    response = client.post(f"/alerts/{alert.pk}/close/", {"note": ""}, follow=True)
    assert "Say why the alert is closed without advice." in response.content.decode()
    client.post(f"/alerts/{alert.pk}/close/", {"note": "患者已复诊"})
    alert.refresh_from_db()
    assert alert.state == AlertState.CLOSED


def test_leader_cannot_act_on_an_alert(client, hospital):
    alert = make_alert(hospital.cardio)
    client.force_login(hospital.erin)
    for action in ("acknowledge", "advise", "close"):
        assert client.post(f"/alerts/{alert.pk}/{action}/", {"text": "x"}).status_code == 403
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN


def test_another_departments_alert_is_404(client, hospital):
    alert = make_alert(hospital.ortho)
    client.force_login(hospital.dave)
    assert client.get(f"/alerts/{alert.pk}/").status_code == 404
    assert client.post(f"/alerts/{alert.pk}/acknowledge/").status_code == 404
    assert Alert.objects.get(pk=alert.pk).state == AlertState.OPEN


def test_doctor_creates_a_rule_checked_against_the_questionnaire(client, hospital):
    from careloop.alerts.tests.factories import make_questionnaire

    questionnaire = make_questionnaire(hospital.cardio)
    client.force_login(hospital.dave)
    data = {
        "questionnaire": questionnaire.pk,
        "question_key": "no_such_question",
        "operator": "gte",
        "value": "7",
        "severity": "medium",
        "message": "疼痛评分{answer}",
        "ack_hours": "24",
        "escalation_hours": "2",
        "is_active": "on",
    }
    page = client.post("/alerts/rules/new/", data)
    assert page.status_code == 200
    assert "The questionnaire has no question with this key." in page.content.decode()
    page = client.post("/alerts/rules/new/", {**data, "question_key": "pain", "operator": "in"})
    assert "needs a list" in page.content.decode()
    assert client.post("/alerts/rules/new/", {**data, "question_key": "pain"}).status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.value, rule.escalation_hours) == (7, 2)
    assert "pain" in client.get("/alerts/rules/").content.decode()


def test_rule_change_applies_to_later_responses_only(hospital):
    rule = make_rule(value=39)
    _task, first = answered_task(hospital.cardio, {"temperature": 38.8, "wound_bleeding": False})
    assert evaluate_response(first) == []
    rule.value = 38.5
    rule.save()
    patient = testing.make_patient()
    testing.make_encounter(patient, hospital.cardio)
    second = response_for(
        patient,
        {"temperature": 38.8, "wound_bleeding": False},
        now=timezone.now() + dt.timedelta(minutes=1),
    )
    assert len(evaluate_response(second)) == 1


def test_list_puts_unacknowledged_and_critical_alerts_first(client, hospital):
    now = timezone.now()
    make_rule(severity=Severity.CRITICAL)
    acknowledged = make_alert(hospital.cardio, now=now)
    from careloop.alerts import services

    services.acknowledge(acknowledged, acting_user=hospital.dave, now=now)
    _task, response = answered_task(
        hospital.cardio, {"temperature": 39.5, "wound_bleeding": True}, now=now
    )
    critical, high = evaluate_response(response, now=now)
    client.force_login(hospital.alice)
    assert list(client.get("/alerts/").context["page"]) == [critical, high, acknowledged]


def test_list_queries_do_not_grow_with_the_alerts(client, hospital):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    now = timezone.now()
    make_alert(hospital.cardio, doctor=hospital.dave, now=now)
    client.force_login(hospital.alice)
    client.get("/alerts/?view=all")  # session and caches warmed up
    with CaptureQueriesContext(connection) as one:
        client.get("/alerts/?view=all")
    for _n in range(4):
        make_alert(hospital.cardio, doctor=hospital.dave, now=now)
    with CaptureQueriesContext(connection) as five:
        page = client.get("/alerts/?view=all")
    assert len(page.context["page"]) == 5
    assert len(five) == len(one)


def test_opening_an_alert_is_audited_as_a_view_of_the_patient(client, hospital):
    from careloop.audit.models import AuditEvent

    alert = make_alert(hospital.cardio)
    client.force_login(hospital.alice)
    client.get(f"/alerts/{alert.pk}/")
    event = AuditEvent.objects.get(action="view_patient")
    assert (event.user, event.patient, event.object_type) == (
        hospital.alice,
        alert.patient,
        "Alert",
    )
    assert event.detail == {"screen": "alert"}


def test_timeline_entries_list_alerts_and_advice_of_the_users_departments(hospital):
    from careloop.alerts import queries, services

    alert = make_alert(hospital.cardio, nurse=hospital.alice)
    services.advise(alert, text="多喝水，明天复诊", channel="sms", acting_user=hospital.dave)
    entries = queries.timeline_entries(alert.patient, hospital.alice)
    assert [(e.kind, e.url) for e in entries] == [
        ("alert", f"/alerts/{alert.pk}/"),
        ("advice", f"/alerts/{alert.pk}/"),
    ]
    assert entries[1].detail == "多喝水，明天复诊"
    assert queries.timeline_entries(alert.patient, hospital.bob) == []
