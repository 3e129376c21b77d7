import datetime as dt
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from careloop.alerts import jobs
from careloop.alerts.models import Alert, AlertRule
from careloop.alerts.tests.factories import make_rule, response_for
from careloop.core import testing
from careloop.followup.models import Notification


def test_jobs_raise_then_escalate_once(hospital):
    hospital.cardio.head = hospital.dave
    hospital.cardio.save()
    make_rule(ack_hours=0)
    patient = testing.make_patient()
    testing.make_encounter(patient, hospital.cardio)
    response_for(
        patient,
        {"temperature": 39.1, "wound_bleeding": False},
        now=timezone.now() - dt.timedelta(minutes=1),
    )
    assert jobs.evaluate_responses_job.call_local() == 1
    assert jobs.evaluate_responses_job.call_local() == 0
    alert = Alert.objects.get()
    assert jobs.escalate_alerts_job.call_local() == 1
    assert jobs.escalate_alerts_job.call_local() == 0
    alert.refresh_from_db()
    assert alert.escalated_to == hospital.dave
    assert Notification.objects.filter(user=hospital.dave).count() == 2  # raised + escalated


def test_command_seeds_default_rules_idempotently(hospital):
    from careloop.surveys.samples import ensure_sample_questionnaires

    ensure_sample_questionnaires()
    out = StringIO()
    call_command("ensure_alert_rules", stdout=out)
    count = AlertRule.objects.count()
    assert count > 10 and f"{count} alert rules created" in out.getvalue()
    call_command("ensure_alert_rules", stdout=StringIO())
    assert AlertRule.objects.count() == count
