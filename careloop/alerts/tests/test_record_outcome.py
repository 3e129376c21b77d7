"""Recording a reached follow-up with abnormal answers raises the alert at once (F2.5)."""

from careloop.alerts.models import Alert
from careloop.alerts.tests.factories import answered_task, make_rule


def test_reached_outcome_with_a_fever_raises_an_alert_when_committed(
    hospital, django_capture_on_commit_callbacks
):
    make_rule()
    with django_capture_on_commit_callbacks(execute=True):
        task, response = answered_task(
            hospital.cardio, {"temperature": 39, "wound_bleeding": False}, nurse=hospital.alice
        )
    alert = Alert.objects.get()
    assert (alert.response_id, alert.task_id, alert.patient_id) == (
        response.pk,
        task.pk,
        task.patient_id,
    )


def test_normal_answers_raise_nothing(hospital, django_capture_on_commit_callbacks):
    make_rule()
    with django_capture_on_commit_callbacks(execute=True):
        answered_task(hospital.cardio, {"temperature": 36.8, "wound_bleeding": False})
    assert not Alert.objects.exists()
